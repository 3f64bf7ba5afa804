package console

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"hash/fnv"
	"sort"
	"strings"
	"time"

	"github.com/routelab/routelab/evaluator/review"
)

// Pair is a blind pairwise item: two sampled outputs of the same prompt by
// different models. A is the one with the smaller request id; sides are
// randomised per reviewer at display time.
type Pair struct {
	ID   string
	A, B Output
}

// PairReveal is what a reviewer sees after answering a pair.
type PairReveal struct {
	Left, Right, Choice string
}

// Refresh loads sampled outputs newer than the last load into the queues,
// forms new pairs, and records reviews already in ClickHouse so nothing is
// queued to a reviewer twice (also across console restarts).
func (c *Console) Refresh(ctx context.Context) error {
	if c.deps.Data == nil {
		return nil
	}
	c.mu.Lock()
	since := uint64(0)
	if !c.loadedAt.IsZero() {
		since = uint64(c.loadedAt.Add(-2 * time.Minute).UnixMilli()) // late arrivals
	}
	c.mu.Unlock()
	started := c.deps.Now()
	outs, err := c.deps.Data.SampledSince(ctx, since, 1_000_000)
	if err != nil {
		return err
	}
	js, err := c.deps.Data.Judgements(ctx, time.Unix(0, 0))
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	items := make([]review.Item, 0, len(outs))
	byPrompt := map[string][]Output{}
	for _, o := range outs {
		if _, ok := c.itemCache[o.RequestID]; !ok {
			c.itemCache[o.RequestID] = o
			// A mirror is judged against its live output only: in the
			// score queue it would mix a candidate into the live
			// quality estimates.
			if !o.Shadow {
				items = append(items, review.Item{ID: o.RequestID, Stratum: o.Stratum(), Overlap: review.IsOverlap(o.RequestID, c.cfg.OverlapRate)})
			}
		}
	}
	c.scores.Add(items...)
	var shadows []Output
	for _, o := range c.itemCache {
		if o.Shadow {
			shadows = append(shadows, o)
			continue
		}
		// Edits pair only with edits of the same references: comparing
		// two edits of different images says nothing about the models.
		k := o.Mode + "\x00" + o.Prompt + "\x00" + strings.Join(o.RefKeys, ",")
		byPrompt[k] = append(byPrompt[k], o)
	}
	var formed []Pair
	for _, group := range byPrompt {
		formed = append(formed, formPairs(group)...)
	}
	formed = append(formed, shadowPairs(shadows, c.itemCache)...)
	var pairs []review.Item
	for _, p := range formed {
		if _, ok := c.pairCache[p.ID]; ok {
			continue
		}
		c.pairCache[p.ID] = p
		pairs = append(pairs, review.Item{ID: p.ID, Stratum: p.A.Model + "~" + p.B.Model, Overlap: review.IsOverlap(p.ID, c.cfg.OverlapRate)})
	}
	c.pairs.Add(pairs...)
	for _, j := range js {
		switch j.Kind {
		case "score":
			c.scores.Record(j.Reviewer, j.RequestID)
		case "pairwise":
			c.pairs.Record(j.Reviewer, pairID(j.RequestID, j.OtherID))
		}
	}
	c.loadedAt = started
	return nil
}

// Run refreshes the queues every interval until ctx ends.
func (c *Console) Run(ctx context.Context, every time.Duration) error {
	if err := c.Refresh(ctx); err != nil {
		c.log.Warn("refresh review queues", "err", err)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := c.Refresh(ctx); err != nil {
				c.log.Warn("refresh review queues", "err", err)
			}
		}
	}
}

// shadowPairs pairs each mirror with its live output when both were
// stored and different models made them: the blind judgement of a shadow
// candidate on real traffic.
func shadowPairs(shadows []Output, byID map[string]Output) []Pair {
	var out []Pair
	for _, s := range shadows {
		live, ok := byID[s.LiveRequestID]
		if !ok || live.Shadow || live.Model == s.Model {
			continue
		}
		a, b := live, s
		if b.RequestID < a.RequestID {
			a, b = b, a
		}
		out = append(out, Pair{ID: pairID(a.RequestID, b.RequestID), A: a, B: b})
	}
	return out
}

// formPairs pairs outputs of one prompt made by different models: each
// output joins at most two pairs, so a popular prompt does not flood the
// queue.
func formPairs(group []Output) []Pair {
	if len(group) < 2 {
		return nil
	}
	sort.Slice(group, func(i, j int) bool { return group[i].RequestID < group[j].RequestID })
	used := map[string]int{}
	var out []Pair
	for i := range group {
		for j := i + 1; j < len(group); j++ {
			a, b := group[i], group[j]
			if a.Model == b.Model || used[a.RequestID] >= 2 || used[b.RequestID] >= 2 {
				continue
			}
			used[a.RequestID]++
			used[b.RequestID]++
			out = append(out, Pair{ID: pairID(a.RequestID, b.RequestID), A: a, B: b})
		}
	}
	return out
}

func pairID(a, b string) string {
	if b < a {
		a, b = b, a
	}
	return a + "~" + b
}

// swapped says whether this reviewer sees pair p with B on the left: a
// stable coin per (seed, reviewer, pair), so a reload shows the same sides.
func (c *Console) swapped(reviewer, id string) bool {
	h := fnv.New64a()
	h.Write([]byte{byte(c.cfg.Seed), byte(c.cfg.Seed >> 8)})
	h.Write([]byte(reviewer + "\x00" + id))
	return h.Sum64()&1 == 1
}

func newEventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
