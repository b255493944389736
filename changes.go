package sessionkit

// changes is a request's pending changes, by key. Requests change few
// keys, so a slice searched linearly beats a map, and its first few
// entries live inside the Store itself: a request that sets one or two
// values allocates nothing for them.
type changes struct {
	list   []change
	inline [2]change
}

// change is one key's pending value or deletion.
type change struct {
	key string
	entry
}

// entry is a pending change to one key.
type entry struct {
	v     any
	raw   []byte // encoded value when known at Set time (immutable values, bookkeeping)
	del   bool
	saved bool // already written by an earlier Save of this request
}

func (c *changes) find(key string) int {
	for i := range c.list {
		if c.list[i].key == key {
			return i
		}
	}
	return -1
}

func (c *changes) get(key string) (entry, bool) {
	if i := c.find(key); i >= 0 {
		return c.list[i].entry, true
	}
	return entry{}, false
}

func (c *changes) put(key string, e entry) {
	if i := c.find(key); i >= 0 {
		c.list[i].entry = e
		return
	}
	if c.list == nil {
		c.list = c.inline[:0]
	}
	c.list = append(c.list, change{key: key, entry: e})
}

func (c *changes) remove(key string) {
	if i := c.find(key); i >= 0 {
		last := len(c.list) - 1
		c.list[i] = c.list[last]
		c.list[last] = change{}
		c.list = c.list[:last]
	}
}

func (c *changes) reset() {
	clear(c.list)
	c.list = c.list[:0]
}

// unsaved reports whether any change still needs writing.
func (c *changes) unsaved() bool {
	for i := range c.list {
		if !c.list[i].saved {
			return true
		}
	}
	return false
}
