// Package file is a sessionkit provider that keeps each session in a file
// of its own, under one directory that several processes on the same
// machine may share.
//
// Import it for its side effect of registering the "file" provider:
//
//	import _ "github.com/sessionkit/sessionkit/file"
//
//	err := session.SetProvider("file", &file.Config{Dir: "/var/lib/myapp/sessions"})
//
// Sessions survive restarts of the process. The provider suits a single
// server or a few processes on one machine; it is not meant for a
// directory shared between machines (NFS and the like).
//
// # Configuration
//
//	Field     Default   Meaning
//	Dir       required  directory holding the sessions; created if missing, with the
//	                    permissions of FileMode plus search (x) bits; an existing
//	                    Dir keeps its own
//	Levels    1         levels of subdirectories (1 to 3), 256 per level
//	FileMode  0600      permissions of session and lock files (set as given, whatever
//	                    the umask)
//	Sync      false     fsync each file and its directory on every write
//
// Dir has no default on purpose: session files are credentials that must
// not land in a shared temporary directory, and sessions that are to
// survive a restart need a place chosen for it. Open refuses a Dir that is
// not empty and was not made by this provider, so that a mistyped path
// does not fill some other directory with session files; it also refuses a
// Dir made with another Levels, since the sessions would then not be
// found.
//
// # Layout and format
//
// A session's file is named by the SHA-256 of its ID in hex, below one
// subdirectory per level named by two more hex digits of the same hash:
// with Levels 1, Dir/3f/3fa9…c2.s. Since the name is a hash, an ID can
// never reach outside Dir whatever it contains, file names have a fixed
// length (IDs may be longer than a file name may be), and IDs that differ
// only in case stay apart on case-insensitive file systems. Every entry
// point also checks the ID with sessionkit.ValidID and refuses a malformed
// one before touching the file system.
//
// A file holds a magic number and format version, a CRC-32C of the rest,
// the deadline in Unix nanoseconds, the ID, and the values as packed by
// sessionkit.EncodeValues. A file that fails these checks reads as an
// error wrapping sessionkit.ErrCorruptValue, and so does an Update of it,
// until Delete removes it.
//
// # Guarantees
//
// Every write goes to a temporary file in the target's directory, which is
// then renamed over the target, so a reader sees the old file or the new
// one, never a partial one. Without Sync, a crash of the machine (not just
// of the process) can lose the last writes; with it, each write costs two
// fsyncs.
//
// Writers of one session are serialised twice: by an in-process lock, and
// by an advisory lock (flock) on one of 256 lock files in Dir/.locks, so
// that processes sharing Dir do not lose each other's updates either. The
// lock file is chosen by the ID's hash; two sessions that share one only
// take turns. Readers take no lock. Lock waits honour the context. On
// systems without flock (Windows, Solaris and others) only the in-process
// lock exists: there, Dir must not be shared between processes.
//
// Rename is atomic for readers: it rewrites the old file with the new
// deadline, then renames it to the new ID's path in one rename(2), so a
// reader finds the session under exactly one of the two IDs.
//
// Count, Range and GC walk the whole directory: they cost time in
// proportion to the number of sessions. GC removes expired session files,
// and temporary files left for more than an hour by a process that died
// while writing; it leaves corrupt files alone.
package file

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sessionkit/sessionkit"
)

// Name is the name the provider registers under.
const Name = "file"

// Defaults and limits of Config.
const (
	DefaultLevels               = 1
	MaxLevels                   = 3
	DefaultFileMode fs.FileMode = 0o600
)

// Config configures the file provider. Dir is required.
type Config struct {
	// Dir is the directory that holds the sessions. It is created if
	// missing. Processes that share sessions use the same Dir and Levels.
	Dir string
	// Levels is the number of subdirectory levels between Dir and the
	// session files, from 1 to MaxLevels; each level has up to 256
	// subdirectories. One level suits up to a few million sessions.
	// Default DefaultLevels.
	Levels int
	// FileMode is the permission bits of session files and lock files.
	// The directories the provider creates (Dir and any missing parents,
	// Dir/.locks, the level subdirectories) get the same bits plus search
	// (x) where reading is allowed. Both are set as given whatever the
	// umask, so that with 0660 the processes of two users in one group
	// can share Dir: under the usual umask 022 the group would lose its
	// write bit on directories and lock files, and could neither create
	// sessions nor take locks.
	//
	// Directories that already exist are left as they are, Dir included:
	// one an administrator prepared (another owner, a setgid group) is a
	// choice the provider must not undo. A setgid bit a new directory
	// inherits from its parent is kept, so that files go on taking the
	// shared group. Default DefaultFileMode (0600).
	FileMode fs.FileMode
	// Sync makes every write fsync the file and its directory before
	// returning, so it survives a crash of the machine.
	Sync bool
}

// ProviderName implements sessionkit.ProviderConfig.
func (*Config) ProviderName() string { return Name }

// driver opens providers for SetProvider.
var driver = sessionkit.DriverFor(func(_ context.Context, c Config) (*Provider, error) { return New(c) })

func init() { sessionkit.Register(Name, driver) }

// stripes is the number of locks sessions are spread over, in process and
// across processes. It is part of the on-disk layout (the lock files), so
// it is not configurable: processes must agree on it.
const stripes = 256

// stripe serialises the writers of the sessions whose hash starts with
// one byte value.
type stripe struct {
	// sem holds one token while the stripe is locked; unlike a mutex, a
	// wait for it can be abandoned when the context ends.
	sem chan struct{}
	// f is the stripe's lock file, opened on first use while sem is held.
	f *os.File
}

// Provider is the file provider. Create it with New or through
// sessionkit's SetProvider.
type Provider struct {
	dir      string
	levels   int
	fileMode fs.FileMode
	dirMode  fs.FileMode
	sync     bool
	stripes  [stripes]stripe
	closed   atomic.Bool
}

// Names inside Dir. Entries starting with a dot are never sessions.
const (
	layoutName = ".sessionkit-layout"
	locksName  = ".locks"
	tempPrefix = ".tmp-"
	suffix     = ".s"
)

// New validates cfg, creates Dir if needed, and returns a provider for it.
func New(cfg Config) (*Provider, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: file: %s", sessionkit.ErrInvalidConfig, fmt.Sprintf(format, a...))
	}
	if cfg.Dir == "" {
		return nil, bad("Dir is required: choose a directory for session files (not a shared temporary directory)")
	}
	levels := cfg.Levels
	if levels == 0 {
		levels = DefaultLevels
	}
	if levels < 1 || levels > MaxLevels {
		return nil, bad("Levels %d is out of range: use 1 to %d, or 0 for the default", cfg.Levels, MaxLevels)
	}
	mode := cfg.FileMode
	if mode == 0 {
		mode = DefaultFileMode
	}
	if mode&^fs.ModePerm != 0 || mode&0o600 != 0o600 {
		return nil, bad("FileMode %v must be permission bits only and let the owner read and write", cfg.FileMode)
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, bad("Dir %q: %v", cfg.Dir, err)
	}
	p := &Provider{dir: dir, levels: levels, fileMode: mode, dirMode: mode | (mode&0o444)>>2, sync: cfg.Sync}
	for i := range p.stripes {
		p.stripes[i].sem = make(chan struct{}, 1)
	}
	if err := p.initDir(); err != nil {
		return nil, err
	}
	return p, nil
}

// initDir creates Dir and its layout file, or checks that an existing Dir
// has the layout this provider expects.
func (p *Provider) initDir() error {
	if err := p.mkdirAll(p.dir); err != nil {
		return fmt.Errorf("file: creating Dir: %w", err)
	}
	want := fmt.Sprintf("sessionkit file provider\nformat %d\nlevels %d\n", formatVersion, p.levels)
	layout := filepath.Join(p.dir, layoutName)
	got, err := os.ReadFile(layout)
	if errors.Is(err, fs.ErrNotExist) {
		entries, rerr := os.ReadDir(p.dir)
		if rerr != nil {
			return fmt.Errorf("file: reading Dir: %w", rerr)
		}
		for _, e := range entries {
			// A volume's root has lost+found; a process that died while
			// writing the layout leaves a temporary file.
			if n := e.Name(); n != locksName && n != "lost+found" && !strings.HasPrefix(n, tempPrefix) {
				return fmt.Errorf("%w: file: Dir %s is not empty (it holds %q) and is not a session directory: use a new or empty directory",
					sessionkit.ErrInvalidConfig, p.dir, n)
			}
		}
		// Written whole, then linked into place: link fails if another
		// process got there first, and then its file is the one to check.
		if werr := p.writeNew(layout, []byte(want)); werr != nil && !errors.Is(werr, fs.ErrExist) {
			return fmt.Errorf("file: writing %s: %w", layout, werr)
		}
		got, err = os.ReadFile(layout)
	}
	if err != nil {
		return fmt.Errorf("file: reading %s: %w", layout, err)
	}
	if string(got) != want {
		return fmt.Errorf("%w: file: Dir %s was made with another layout (%q), not %q: use the same Levels as the processes that share it",
			sessionkit.ErrInvalidConfig, p.dir, strings.ReplaceAll(string(got), "\n", "; "), strings.ReplaceAll(want, "\n", "; "))
	}
	if err := p.mkdirAll(filepath.Join(p.dir, locksName)); err != nil {
		return fmt.Errorf("file: creating the lock directory: %w", err)
	}
	return nil
}

// mkdirAll creates dir and its missing parents with exactly p.dirMode.
// os.MkdirAll would apply the umask, and could not tell the directories it
// made from those that existed, which must keep their permissions. Unlike
// a lock file, a directory cannot be made aside and moved into place
// without risking replacing one another process has just made, so for a
// moment after its creation another user's process may find it without
// the group's write bit; that happens once per directory.
func (p *Provider) mkdirAll(dir string) error {
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := p.mkdirAll(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, p.dirMode); err != nil {
		// Another process may have made it meanwhile; that one sets its
		// mode.
		if fi, serr := os.Stat(dir); serr == nil && fi.IsDir() {
			return nil
		}
		return err
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if fi.Mode().Perm() == p.dirMode {
		return nil
	}
	// A plain chmod would clear the setgid bit a new directory inherits
	// from a setgid parent (as on Linux), and with it the shared group of
	// the files made in it.
	return os.Chmod(dir, p.dirMode|fi.Mode()&fs.ModeSetgid)
}

// writeNew creates path with content b, failing with fs.ErrExist if it
// exists, and never leaving a partial file at path.
func (p *Provider) writeNew(path string, b []byte) error {
	tmp, err := p.writeTemp(filepath.Dir(path), b)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	return os.Link(tmp, path)
}

// loc is where a session lives.
type loc struct {
	dir, path string
	stripe    int
}

// locate validates id and returns its file's location. Paths are built
// only from the hex hash of a valid ID.
func (p *Provider) locate(id string) (loc, error) {
	if !sessionkit.ValidID(id) {
		return loc{}, fmt.Errorf("%w (%d bytes)", sessionkit.ErrInvalidID, len(id))
	}
	sum := sha256.Sum256([]byte(id))
	var h [2 * sha256.Size]byte
	hex.Encode(h[:], sum[:])
	var b strings.Builder
	b.Grow(len(p.dir) + 3*p.levels + len(h) + len(suffix) + 1)
	b.WriteString(p.dir)
	for l := range p.levels {
		b.WriteByte(filepath.Separator)
		b.Write(h[2*l : 2*l+2])
	}
	dir := b.String()
	b.WriteByte(filepath.Separator)
	b.Write(h[:])
	b.WriteString(suffix)
	return loc{dir: dir, path: b.String(), stripe: int(sum[0])}, nil
}

// check reports why no call may be made now: the provider is closed or
// ctx is done.
func (p *Provider) check(ctx context.Context, op string) error {
	if p.closed.Load() {
		return fmt.Errorf("file: %s: %w", op, sessionkit.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("file: %s: %w", op, err)
	}
	return nil
}

// lock takes stripe i's in-process and file locks, waiting no longer than
// ctx allows.
func (p *Provider) lock(ctx context.Context, op string, i int) error {
	s := &p.stripes[i]
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("file: %s: waiting for the session lock: %w", op, ctx.Err())
	}
	if err := p.check(ctx, op); err != nil {
		<-s.sem
		return err
	}
	if s.f == nil {
		f, err := p.openLockFile(i)
		if err != nil {
			<-s.sem
			return fmt.Errorf("file: %s: opening the lock file: %w", op, err)
		}
		s.f = f
	}
	// Another process may hold the file lock; poll it, so that the wait
	// ends with ctx or Close.
	for wait := 20 * time.Microsecond; ; wait = min(2*wait, 5*time.Millisecond) {
		ok, err := tryLockFile(s.f)
		if err != nil {
			<-s.sem
			return fmt.Errorf("file: %s: locking: %w", op, err)
		}
		if ok {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		if err := p.check(ctx, op); err != nil {
			<-s.sem
			return err
		}
	}
}

// openLockFile opens stripe i's lock file, creating it if missing. A new
// one is written aside with FileMode and linked into place, like the
// layout file: created in place, it would pass through the umask, and
// between its creation and a chmod another user's process could find it
// and fail to open it.
func (p *Provider) openLockFile(i int) (*os.File, error) {
	path := filepath.Join(p.dir, locksName, fmt.Sprintf("%02x", i))
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if !errors.Is(err, fs.ErrNotExist) {
		return f, err
	}
	if err := p.writeNew(path, nil); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	return os.OpenFile(path, os.O_RDWR, 0)
}

func (p *Provider) unlock(i int) {
	s := &p.stripes[i]
	_ = unlockFile(s.f)
	<-s.sem
}

// File format, big-endian:
//
//	0   magic "SKF" and formatVersion
//	4   CRC-32C (Castagnoli) of bytes 8 to the end
//	8   deadline, Unix nanoseconds (int64)
//	16  ID length (uint16)
//	18  ID
//	..  values, as packed by sessionkit.EncodeValues
const (
	formatVersion = 1
	headerLen     = 18
)

var (
	magic      = [4]byte{'S', 'K', 'F', formatVersion}
	crcTable   = crc32.MakeTable(crc32.Castagnoli)
	errCorrupt = sessionkit.ErrCorruptValue
)

// record is a decoded session file, its values still packed.
type record struct {
	id       []byte
	deadline int64
	blob     []byte
}

func encodeFile(id string, deadline int64, blob []byte) []byte {
	b := make([]byte, headerLen+len(id)+len(blob))
	copy(b, magic[:])
	binary.BigEndian.PutUint64(b[8:], uint64(deadline))
	binary.BigEndian.PutUint16(b[16:], uint16(len(id)))
	copy(b[headerLen:], id)
	copy(b[headerLen+len(id):], blob)
	binary.BigEndian.PutUint32(b[4:], crc32.Checksum(b[8:], crcTable))
	return b
}

func decodeFile(b []byte) (record, error) {
	if len(b) < headerLen || [4]byte(b[:4]) != magic {
		return record{}, fmt.Errorf("%w: not a session file of format %d", errCorrupt, formatVersion)
	}
	if crc32.Checksum(b[8:], crcTable) != binary.BigEndian.Uint32(b[4:]) {
		return record{}, fmt.Errorf("%w: checksum mismatch", errCorrupt)
	}
	n := int(binary.BigEndian.Uint16(b[16:]))
	if headerLen+n > len(b) {
		return record{}, fmt.Errorf("%w: truncated", errCorrupt)
	}
	return record{
		id:       b[headerLen : headerLen+n],
		deadline: int64(binary.BigEndian.Uint64(b[8:])),
		blob:     b[headerLen+n:],
	}, nil
}

// read returns the session file at path; ok is false if there is none.
func read(path string) (r record, ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return record{}, false, nil
	}
	if err != nil {
		return record{}, false, err
	}
	r, err = decodeFile(b)
	if err != nil {
		return record{}, false, fmt.Errorf("file: %s: %w", path, err)
	}
	return r, true, nil
}

// readDeadline returns the deadline of the session file at path from its
// first bytes, without reading or checking the rest. ok is false if the
// file is gone or is not a session file of this format.
func readDeadline(path string) (deadline int64, ok bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	var b [16]byte
	if _, err := io.ReadFull(f, b[:]); err != nil || [4]byte(b[:4]) != magic {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(b[8:])), true
}

// writeTemp writes b to a new temporary file in dir and returns its path.
// It creates dir if needed.
func (p *Provider) writeTemp(dir string, b []byte) (string, error) {
	f, err := os.CreateTemp(dir, tempPrefix+"*")
	if errors.Is(err, fs.ErrNotExist) {
		if err := p.mkdirAll(dir); err != nil {
			return "", err
		}
		f, err = os.CreateTemp(dir, tempPrefix+"*")
	}
	if err != nil {
		return "", err
	}
	name := f.Name()
	err = func() error {
		if p.fileMode != 0o600 { // CreateTemp makes 0600 files
			if err := f.Chmod(p.fileMode); err != nil {
				return err
			}
		}
		if _, err := f.Write(b); err != nil {
			return err
		}
		if p.sync {
			return f.Sync()
		}
		return nil
	}()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return "", err
	}
	return name, nil
}

// syncDir makes a rename or removal in dir durable, if Sync is set.
func (p *Provider) syncDir(dir string) error {
	if !p.sync {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// write atomically replaces l's file with b.
func (p *Provider) write(l loc, b []byte) error {
	tmp, err := p.writeTemp(l.dir, b)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, l.path); err != nil {
		os.Remove(tmp)
		return err
	}
	return p.syncDir(l.dir)
}

// Get implements sessionkit.Provider.
func (p *Provider) Get(ctx context.Context, id string) (sessionkit.Record, error) {
	l, err := p.locate(id)
	if err != nil {
		return sessionkit.Record{}, err
	}
	if err := p.check(ctx, "get"); err != nil {
		return sessionkit.Record{}, err
	}
	r, ok, err := read(l.path)
	switch {
	case err != nil:
		return sessionkit.Record{}, fmt.Errorf("file: get: %w", err)
	case !ok || time.Now().UnixNano() >= r.deadline:
		return sessionkit.Record{}, sessionkit.ErrNotFound
	}
	values, err := sessionkit.ParsePacked(r.blob)
	if err != nil {
		return sessionkit.Record{}, fmt.Errorf("file: get: %s: %w", l.path, err)
	}
	return sessionkit.Record{Packed: values, Expires: time.Unix(0, r.deadline)}, nil
}

// Update implements sessionkit.Provider.
func (p *Provider) Update(ctx context.Context, id string, u sessionkit.Update) error {
	l, err := p.locate(id)
	if err != nil {
		return err
	}
	if err := p.check(ctx, "update"); err != nil {
		return err
	}
	if err := p.lock(ctx, "update", l.stripe); err != nil {
		return err
	}
	defer p.unlock(l.stripe)
	r, ok, err := read(l.path)
	if err != nil {
		return fmt.Errorf("file: update: %w", err)
	}
	live := ok && time.Now().UnixNano() < r.deadline
	switch {
	case !live && !u.Create:
		return sessionkit.ErrNotFound
	case live && u.Create:
		return sessionkit.ErrExists
	}
	deadline, blob := r.deadline, r.blob
	if !live || !u.Expires.IsZero() {
		deadline = sessionkit.UnixNano(u.Expires)
	}
	switch {
	case !live:
		blob = u.AppendPacked(nil, "")
	case u.Clear || len(u.Delete) > 0 || u.SetLen() > 0:
		values, err := sessionkit.ParsePacked(r.blob)
		if err != nil {
			return fmt.Errorf("file: update: %s: %w", l.path, err)
		}
		blob = u.AppendPacked(nil, values)
	}
	// The lock wait may have outlived the caller's patience.
	if err := p.check(ctx, "update"); err != nil {
		return err
	}
	if err := p.write(l, encodeFile(id, deadline, blob)); err != nil {
		return fmt.Errorf("file: update: %w", err)
	}
	return nil
}

// ReadsUpdatesByMethod implements sessionkit.MethodReader: Update reads
// the values it stores through the Update's methods only.
func (*Provider) ReadsUpdatesByMethod() {}

// Touch implements sessionkit.Toucher: it rewrites the file with the new
// deadline, without decoding the values.
func (p *Provider) Touch(ctx context.Context, id string, expires time.Time) error {
	return p.Update(ctx, id, sessionkit.Update{Expires: expires})
}

// Delete implements sessionkit.Provider. Deleting a missing session is not
// an error.
func (p *Provider) Delete(ctx context.Context, id string) error {
	l, err := p.locate(id)
	if err != nil {
		return err
	}
	if err := p.check(ctx, "delete"); err != nil {
		return err
	}
	// Under the lock, so that an Update that read the file before the
	// removal cannot write it back after.
	if err := p.lock(ctx, "delete", l.stripe); err != nil {
		return err
	}
	defer p.unlock(l.stripe)
	if err := os.Remove(l.path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("file: delete: %w", err)
	}
	if err := p.syncDir(l.dir); err != nil {
		return fmt.Errorf("file: delete: %w", err)
	}
	return nil
}

// Rename implements sessionkit.Provider. Readers see the session under
// exactly one of the two IDs at any time.
func (p *Provider) Rename(ctx context.Context, oldID, newID string, expires time.Time) error {
	from, err := p.locate(oldID)
	if err != nil {
		return err
	}
	to, err := p.locate(newID)
	if err != nil {
		return err
	}
	if oldID == newID {
		return fmt.Errorf("file: rename to the same ID: %w", sessionkit.ErrExists)
	}
	if err := p.check(ctx, "rename"); err != nil {
		return err
	}
	// Two stripes are always locked in ascending order, so that two
	// Renames in opposite directions cannot deadlock.
	first, second := min(from.stripe, to.stripe), max(from.stripe, to.stripe)
	if err := p.lock(ctx, "rename", first); err != nil {
		return err
	}
	defer p.unlock(first)
	if second != first {
		if err := p.lock(ctx, "rename", second); err != nil {
			return err
		}
		defer p.unlock(second)
	}
	now := time.Now().UnixNano()
	r, ok, err := read(from.path)
	switch {
	case err != nil:
		return fmt.Errorf("file: rename: %w", err)
	case !ok || now >= r.deadline:
		return sessionkit.ErrNotFound
	}
	target, ok, err := read(to.path)
	switch {
	case err != nil:
		return fmt.Errorf("file: rename: %w", err)
	case ok && now < target.deadline:
		return fmt.Errorf("file: rename: %w", sessionkit.ErrExists)
	}
	if err := p.check(ctx, "rename"); err != nil {
		return err
	}
	if err := p.mkdirAll(to.dir); err != nil {
		return fmt.Errorf("file: rename: %w", err)
	}
	// The old file takes the new ID and deadline in place, then moves in
	// one rename(2). In between, the old ID still reads as the same
	// session (with its new deadline), so no reader sees neither.
	if err := p.write(from, encodeFile(newID, sessionkit.UnixNano(expires), r.blob)); err != nil {
		return fmt.Errorf("file: rename: %w", err)
	}
	if err := os.Rename(from.path, to.path); err != nil {
		return fmt.Errorf("file: rename: %w", err)
	}
	if err := p.syncDir(to.dir); err != nil {
		return fmt.Errorf("file: rename: %w", err)
	}
	if to.dir != from.dir {
		if err := p.syncDir(from.dir); err != nil {
			return fmt.Errorf("file: rename: %w", err)
		}
	}
	return nil
}

// walk calls fn with the path of every session file in Dir, and tmp with
// every temporary file, until one returns false or ctx ends.
func (p *Provider) walk(ctx context.Context, fn func(path string) bool, tmp func(path string)) error {
	var visit func(dir string, depth int) (bool, error)
	visit = func(dir string, depth int) (bool, error) {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && depth > 0 {
				return true, nil
			}
			return false, err
		}
		for _, e := range entries {
			name := e.Name()
			path := filepath.Join(dir, name)
			switch {
			case depth < p.levels && e.IsDir() && isHex(name, 2):
				more, err := visit(path, depth+1)
				if !more || err != nil {
					return more, err
				}
			case depth == p.levels && strings.HasSuffix(name, suffix) && isHex(strings.TrimSuffix(name, suffix), 2*sha256.Size):
				if err := ctx.Err(); err != nil {
					return false, err
				}
				if !fn(path) {
					return false, nil
				}
			case depth > 0 && strings.HasPrefix(name, tempPrefix) && tmp != nil:
				tmp(path)
			}
		}
		return true, nil
	}
	_, err := visit(p.dir, 0)
	return err
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Count implements sessionkit.Counter. It reads the header of every
// session file.
func (p *Provider) Count(ctx context.Context) (int, error) {
	if err := p.check(ctx, "count"); err != nil {
		return 0, err
	}
	n, now := 0, time.Now().UnixNano()
	err := p.walk(ctx, func(path string) bool {
		if d, ok := readDeadline(path); ok && now < d {
			n++
		}
		return true
	}, nil)
	if err != nil {
		return 0, fmt.Errorf("file: count: %w", err)
	}
	return n, nil
}

// Range implements sessionkit.Ranger. It reads every session file; corrupt
// ones are skipped, as are files whose ID does not match their name (left
// by a Rename interrupted by a crash).
func (p *Provider) Range(ctx context.Context, fn func(id string, r sessionkit.Record) bool) error {
	if err := p.check(ctx, "range"); err != nil {
		return err
	}
	now := time.Now().UnixNano()
	err := p.walk(ctx, func(path string) bool {
		r, ok, err := read(path)
		if err != nil || !ok || now >= r.deadline {
			return true
		}
		sum := sha256.Sum256(r.id)
		if strings.TrimSuffix(filepath.Base(path), suffix) != hex.EncodeToString(sum[:]) {
			return true
		}
		values, err := sessionkit.ParsePacked(r.blob)
		if err != nil {
			return true
		}
		return fn(string(r.id), sessionkit.Record{Packed: values, Expires: time.Unix(0, r.deadline)})
	}, nil)
	if err != nil {
		return fmt.Errorf("file: range: %w", err)
	}
	return nil
}

// tempMaxAge is how old a temporary file must be before GC takes it for
// the leftover of a process that died while writing.
const tempMaxAge = time.Hour

// GC implements sessionkit.GarbageCollector. It removes expired session
// files, each under its session's lock, and stale temporary files. It goes
// on past a file it cannot remove and returns the first such error.
func (p *Provider) GC(ctx context.Context) error {
	if err := p.check(ctx, "gc"); err != nil {
		return err
	}
	var first error
	keep := func(err error) {
		if first == nil && err != nil && !errors.Is(err, fs.ErrNotExist) {
			first = err
		}
	}
	now := time.Now()
	err := p.walk(ctx, func(path string) bool {
		if d, ok := readDeadline(path); !ok || now.UnixNano() < d {
			return true
		}
		i, err := hex.DecodeString(filepath.Base(path)[:2])
		if err != nil {
			return true
		}
		// The session may have been created again since the header was
		// read: check again under its lock.
		if err := p.lock(ctx, "gc", int(i[0])); err != nil {
			keep(err)
			return false
		}
		defer p.unlock(int(i[0]))
		// A full read, checksum included: a damaged deadline must not
		// get a live session removed.
		if r, ok, err := read(path); err == nil && ok && time.Now().UnixNano() >= r.deadline {
			keep(os.Remove(path))
		}
		return true
	}, func(path string) {
		if fi, err := os.Lstat(path); err == nil && now.Sub(fi.ModTime()) > tempMaxAge {
			keep(os.Remove(path))
		}
	})
	if err != nil {
		return fmt.Errorf("file: gc: %w", err)
	}
	if first != nil {
		return fmt.Errorf("file: gc: %w", first)
	}
	return nil
}

// Close implements sessionkit.Provider. It waits for calls that hold a
// session lock and closes the lock files; the session files stay.
func (p *Provider) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	var first error
	for i := range p.stripes {
		s := &p.stripes[i]
		s.sem <- struct{}{}
		if s.f != nil {
			if err := s.f.Close(); err != nil && first == nil {
				first = err
			}
			s.f = nil
		}
		<-s.sem
	}
	if first != nil {
		return fmt.Errorf("file: close: %w", first)
	}
	return nil
}
