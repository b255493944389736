package memory

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unsafe"

	"github.com/sessionkit/sessionkit"
)

// A version is one immutable state of a session, in one allocation:
//
//	[0:8]    deadline, unix nanoseconds, little endian
//	[8:12]   total length of the version, little endian
//	[12:14]  length of the session's ID
//	[14:16]  serial (see below)
//	[16:]    the session's ID, then its values (sessionkit.Packed)
//
// A cell points to a version's first byte, so one atomic pointer
// publishes the deadline, the ID and the values together, and a lookup
// finds the ID to compare on the same cache line as the deadline.
//
// The serial tells apart two sessions that had the same ID one after the
// other (an expired session replaced by a new one, or a session deleted
// and its ID created again): every version of one session has the
// serial its shard gave the session's first, so a write that lost a race
// and looks again writes only onto a version of its own session.
const versionHeader = 16

const (
	// maxIDLength is the longest session ID the provider stores.
	maxIDLength = math.MaxUint16
	// maxVersion is the largest version, ID and values included.
	maxVersion = math.MaxUint32
)

// ErrTooLarge is wrapped by the error of a write whose session would not
// fit a version: an ID longer than 65,535 bytes (the manager's are at most
// sessionkit.MaxIDLength), or more than 4 GiB of ID and values.
var ErrTooLarge = errors.New("memory: session too large")

// dead is the version of a retired session: never live, never replaced.
// moved is the version of a cell whose session a rebuild handed over to
// the next table. Both hold an empty ID.
var dead, moved = sentinel(), sentinel()

func sentinel() *byte {
	b := make([]byte, versionHeader)
	binary.LittleEndian.PutUint64(b, 1<<63) // math.MinInt64
	binary.LittleEndian.PutUint32(b[8:], versionHeader)
	return &b[0]
}

// at returns the n bytes of v from off on.
func at(v *byte, off, n int) []byte {
	return unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(v), off)), n)
}

// expiresOf returns a version's deadline.
func expiresOf(v *byte) int64 {
	return int64(binary.LittleEndian.Uint64(unsafe.Slice(v, 8)))
}

// idLen returns the length of a version's ID.
func idLen(v *byte) int { return int(binary.LittleEndian.Uint16(at(v, 12, 2))) }

// keyOf returns a version's session ID. It lies in the version, which
// never changes, so it may be kept.
func keyOf(v *byte) string {
	return unsafe.String((*byte)(unsafe.Add(unsafe.Pointer(v), versionHeader)), idLen(v))
}

// packedOf returns a version's values.
func packedOf(v *byte) sessionkit.Packed {
	total := int(binary.LittleEndian.Uint32(at(v, 8, 4)))
	start := versionHeader + idLen(v)
	return sessionkit.Packed(unsafe.String((*byte)(unsafe.Add(unsafe.Pointer(v), start)), total-start))
}

// serialOf returns a version's serial.
func serialOf(v *byte) uint16 { return binary.LittleEndian.Uint16(at(v, 14, 2)) }

// setSerial gives a version not yet published its serial.
func setSerial(v *byte, serial uint16) { binary.LittleEndian.PutUint16(at(v, 14, 2), serial) }

// zeroPrefix is the start of every new version whose ID is at most
// MaxIDLength bytes long; it is only read.
var zeroPrefix [versionHeader + sessionkit.MaxIDLength]byte

// newVersion builds a version of the session id, with the given serial,
// holding u applied to old, until expires.
func newVersion(id string, serial uint16, old sessionkit.Packed, u *sessionkit.Update, expires int64) (*byte, error) {
	if len(id) > maxIDLength {
		return nil, fmt.Errorf("%w: an ID of %d bytes, longer than %d", ErrTooLarge, len(id), maxIDLength)
	}
	n := versionHeader + len(id)
	var prefix []byte
	if n <= len(zeroPrefix) {
		// AppendPacked grows dst once, to the exact size: given a
		// prefix with no spare capacity, it makes the one allocation,
		// and never writes to zeroPrefix.
		prefix = zeroPrefix[:n:n]
	} else {
		prefix = make([]byte, n)
	}
	b := u.AppendPacked(prefix, old)
	if uint64(len(b)) > maxVersion {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrTooLarge, len(b), maxVersion)
	}
	binary.LittleEndian.PutUint64(b, uint64(expires))
	binary.LittleEndian.PutUint32(b[8:], uint32(len(b)))
	binary.LittleEndian.PutUint16(b[12:], uint16(len(id)))
	binary.LittleEndian.PutUint16(b[14:], serial)
	copy(b[versionHeader:], id)
	return &b[0], nil
}
