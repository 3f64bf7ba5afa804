package review

import (
	"errors"
	"hash/fnv"
	"sort"
	"sync"
	"time"
)

// Queue errors.
var (
	ErrEmpty   = errors.New("no item left for this reviewer")
	ErrNoLease = errors.New("item is not leased to this reviewer")
)

// Item is one thing to review: a sampled output (ID = request id) or a
// pairwise pair. Stratum groups items for balanced presentation (route, tier,
// experiment arm). An overlap item is scored by several reviewers so their
// agreement can be measured; every other item is scored once.
type Item struct {
	ID      string
	Stratum string
	Overlap bool
}

// Lease is an item handed to one reviewer until Expires.
type Lease struct {
	Item    Item
	Expires time.Time
}

// Progress is one reviewer's position in a queue.
type Progress struct {
	Done      int // items this reviewer submitted
	Skipped   int
	Remaining int // items this reviewer could still be given
}

// QueueConfig configures a Queue. Now and Seed make it deterministic in tests.
type QueueConfig struct {
	LeaseTTL      time.Duration // how long an unanswered item stays reserved; default 10m
	OverlapRaters int           // reviewers per overlap item; default 3
	Seed          uint64        // order seed; each reviewer's order derives from it
	Now           func() time.Time
}

type itemState struct {
	item   Item
	subs   map[string]bool      // reviewer -> submitted
	leases map[string]time.Time // reviewer -> lease expiry
}

type view struct {
	gen    int
	order  []*itemState
	cursor int // every item before cursor is finished for this reviewer
}

// Queue hands items to reviewers: a random order per reviewer, interleaved
// across strata; a lease so two reviewers never get the same item at once
// (overlap items go to OverlapRaters different reviewers); an item added twice
// is queued once; an item a reviewer submitted or skipped never comes back to
// them. It is safe for concurrent use.
type Queue struct {
	mu      sync.Mutex
	cfg     QueueConfig
	items   map[string]*itemState
	all     []*itemState
	gen     int
	views   map[string]*view
	skipped map[string]map[string]bool // reviewer -> item -> skipped
	done    map[string]int             // reviewer -> submitted count
	held    map[string]*itemState      // reviewer -> item last leased to them
}

// NewQueue returns an empty queue.
func NewQueue(cfg QueueConfig) *Queue {
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 10 * time.Minute
	}
	if cfg.OverlapRaters < 2 {
		cfg.OverlapRaters = 3
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Queue{
		cfg: cfg, items: map[string]*itemState{}, views: map[string]*view{},
		skipped: map[string]map[string]bool{}, done: map[string]int{},
		held: map[string]*itemState{},
	}
}

// Add queues items not seen before and returns how many were new.
func (q *Queue) Add(items ...Item) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, it := range items {
		if it.ID == "" || q.items[it.ID] != nil {
			continue
		}
		s := &itemState{item: it, subs: map[string]bool{}, leases: map[string]time.Time{}}
		q.items[it.ID] = s
		q.all = append(q.all, s)
		n++
	}
	if n > 0 {
		q.gen++
	}
	return n
}

// Len is the number of distinct items ever queued.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.all)
}

// Record marks an item as already submitted by a reviewer (history loaded
// at start-up, or a score that arrived through another console replica).
func (q *Queue) Record(reviewer, id string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if s := q.items[id]; s != nil && !s.subs[reviewer] {
		s.subs[reviewer] = true
		delete(s.leases, reviewer)
		q.done[reviewer]++
	}
}

// Next leases the reviewer's next item. A reviewer holding a live lease gets
// the same item again (a page reload does not lose it), with the lease renewed.
func (q *Queue) Next(reviewer string) (Lease, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.cfg.Now()
	if s := q.held[reviewer]; s != nil {
		if exp, ok := s.leases[reviewer]; ok && exp.After(now) && !s.subs[reviewer] {
			return q.lease(s, reviewer, now), nil
		}
	}
	v := q.viewFor(reviewer)
	// Skip the finished prefix for good, then take the first free item.
	for v.cursor < len(v.order) && q.finished(v.order[v.cursor], reviewer) {
		v.cursor++
	}
	passed := 0
	for _, s := range v.order[v.cursor:] {
		if q.finished(s, reviewer) {
			passed++
			continue
		}
		if !q.free(s, reviewer, now) {
			continue
		}
		if passed > 64 && passed > len(v.order)/8 {
			q.compact(v, reviewer)
		}
		return q.lease(s, reviewer, now), nil
	}
	return Lease{}, ErrEmpty
}

// compact drops items finished for the reviewer (mostly ones others
// completed) from their order so scans stay short.
func (q *Queue) compact(v *view, reviewer string) {
	kept := v.order[:0]
	for _, s := range v.order[v.cursor:] {
		if !q.finished(s, reviewer) {
			kept = append(kept, s)
		}
	}
	v.order, v.cursor = kept, 0
}

// Submit records the reviewer's answer for a leased item. A lease that has
// expired still counts if nobody else took the item meanwhile.
func (q *Queue) Submit(reviewer, id string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.items[id]
	if s == nil || s.subs[reviewer] {
		return ErrNoLease
	}
	if _, ok := s.leases[reviewer]; !ok {
		return ErrNoLease
	}
	now := q.cfg.Now()
	if exp := s.leases[reviewer]; !exp.After(now) && !q.free(s, reviewer, now) {
		return ErrNoLease
	}
	delete(s.leases, reviewer)
	s.subs[reviewer] = true
	q.done[reviewer]++
	return nil
}

// Skip releases the reviewer's lease; the item goes to someone else and is
// not offered to this reviewer again.
func (q *Queue) Skip(reviewer, id string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.items[id]
	if s == nil {
		return ErrNoLease
	}
	if _, ok := s.leases[reviewer]; !ok {
		return ErrNoLease
	}
	delete(s.leases, reviewer)
	if q.skipped[reviewer] == nil {
		q.skipped[reviewer] = map[string]bool{}
	}
	q.skipped[reviewer][id] = true
	return nil
}

// Progress reports the reviewer's counts.
func (q *Queue) Progress(reviewer string) Progress {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.cfg.Now()
	v := q.viewFor(reviewer)
	skipped := q.skipped[reviewer]
	p := Progress{Done: q.done[reviewer], Skipped: len(skipped)}
	for _, s := range v.order[v.cursor:] {
		if len(s.subs) == 0 && len(s.leases) == 0 {
			// Untouched (most items): free, and finished for this
			// reviewer only if skipped. One lookup instead of finished
			// and free's; this loop is the cost of every next item.
			if !skipped[s.item.ID] {
				p.Remaining++
			}
			continue
		}
		if !q.finished(s, reviewer) && (q.free(s, reviewer, now) || s.leases[reviewer].After(now)) {
			p.Remaining++
		}
	}
	return p
}

func (q *Queue) lease(s *itemState, reviewer string, now time.Time) Lease {
	exp := now.Add(q.cfg.LeaseTTL)
	s.leases[reviewer] = exp
	q.held[reviewer] = s
	return Lease{Item: s.item, Expires: exp}
}

// finished: this reviewer will never be given s again.
func (q *Queue) finished(s *itemState, reviewer string) bool {
	if s.subs[reviewer] || q.skipped[reviewer][s.item.ID] {
		return true
	}
	need := 1
	if s.item.Overlap {
		need = q.cfg.OverlapRaters
	}
	return len(s.subs) >= need
}

// free: s can be leased to reviewer now (live leases of others count
// against the item's remaining slots).
func (q *Queue) free(s *itemState, reviewer string, now time.Time) bool {
	need := 1
	if s.item.Overlap {
		need = q.cfg.OverlapRaters
	}
	taken := len(s.subs)
	for r, exp := range s.leases {
		if r != reviewer && exp.After(now) {
			taken++
		}
	}
	return taken < need
}

// viewFor returns the reviewer's order, rebuilt when items were added: items
// are shuffled within their stratum by a hash of (seed, reviewer, item), and
// strata are interleaved round-robin so every stratum is seen early.
func (q *Queue) viewFor(reviewer string) *view {
	v := q.views[reviewer]
	if v != nil && v.gen == q.gen {
		return v
	}
	type keyed struct {
		s    *itemState
		rank int
		h    uint64
	}
	byStratum := map[string][]keyed{}
	for _, s := range q.all {
		byStratum[s.item.Stratum] = append(byStratum[s.item.Stratum], keyed{s: s, h: q.hash(reviewer, s.item.ID)})
	}
	var ks []keyed
	for stratum, list := range byStratum {
		sort.Slice(list, func(i, j int) bool { return list[i].h < list[j].h })
		sh := q.hash(reviewer, "\x00stratum:"+stratum)
		for i := range list {
			list[i].rank = i
			list[i].h = sh // ties within a round broken by the stratum's hash
		}
		ks = append(ks, list...)
	}
	sort.Slice(ks, func(i, j int) bool {
		if ks[i].rank != ks[j].rank {
			return ks[i].rank < ks[j].rank
		}
		return ks[i].h < ks[j].h
	})
	nv := &view{gen: q.gen, order: make([]*itemState, len(ks))}
	for i, k := range ks {
		nv.order[i] = k.s
	}
	q.views[reviewer] = nv
	return nv
}

func (q *Queue) hash(reviewer, id string) uint64 {
	h := fnv.New64a()
	var b [8]byte
	for i := range b {
		b[i] = byte(q.cfg.Seed >> (8 * i))
	}
	h.Write(b[:])
	h.Write([]byte(reviewer))
	h.Write([]byte{0})
	h.Write([]byte(id))
	return h.Sum64()
}

// IsOverlap picks a stable fraction rate of items as overlap items.
func IsOverlap(id string, rate float64) bool {
	h := fnv.New64a()
	h.Write([]byte("overlap\x00" + id))
	return float64(h.Sum64()%1_000_000)/1_000_000 < rate
}
