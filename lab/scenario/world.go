package scenario

import (
	"fmt"
	"time"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/providers/sim"
	"github.com/routelab/routelab/router"
)

// labWorld is the simulated world with the scenario's change applied on
// top (success thinned to a new probability, latency stretched), as a
// sim.Caller: the lab's providers call it the way serve's call the world.
type labWorld struct {
	w         *sim.World
	seed      uint64
	changed   bool
	quality   map[string]map[string]float64 // model -> task -> new success probability
	slow      map[string]float64            // model -> latency factor
	editShift bool
}

var _ sim.Caller = (*labWorld)(nil)

// Call answers c as the world does, with the change applied once it is on.
func (lw *labWorld) Call(c sim.Call) sim.Outcome {
	o := lw.w.Call(c)
	if !lw.changed {
		return o
	}
	if f, ok := lw.slow[c.Model]; ok && o.ErrKind != providers.KindRateLimited {
		o.Latency = time.Duration(float64(o.Latency) * f)
		if dl := time.Duration(c.DeadlineMS) * time.Millisecond; c.DeadlineMS > 0 && o.ErrKind == "" && o.Latency > dl {
			o.ErrKind, o.Success, o.Quality, o.CostUSD, o.Latency = providers.KindTimeout, false, 0, 0, dl
		}
	}
	// the new probability is for a fresh request; edit chains keep the
	// world's decay, so the thinning ratio is q / P(fresh). A thinned
	// success gets a failing quality, so the rendered image shows it.
	if q, ok := lw.quality[c.Model][o.Task]; ok && o.Success {
		if fresh := lw.w.TrueP(c.Model, o.Task, 1); fresh > 0 && lw.draw(c.RequestID, c.Model, c.Attempt) >= q/fresh {
			o.Success = false
			o.Quality = sim.SuccessQuality * (o.Quality - sim.SuccessQuality) / (1 - sim.SuccessQuality)
		}
	}
	return o
}

// draw is the change's own uniform draw for a call, independent of the
// world's.
func (lw *labWorld) draw(id, model string, attempt int) float64 {
	h := uint64(14695981039346656037) ^ (lw.seed+0x51)*0x9e3779b97f4a7c15
	for _, s := range []string{id, "\xff", model} {
		for i := 0; i < len(s); i++ {
			h ^= uint64(s[i])
			h *= 1099511628211
		}
	}
	h ^= uint64(attempt) * 0xbf58476d1ce4e5b9
	h += 0x9e3779b97f4a7c15
	h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9
	h = (h ^ (h >> 27)) * 0x94d049bb133111eb
	h ^= h >> 31
	return (float64(h>>11) + 0.5) / (1 << 53)
}

// stream is an endless workload: the generator's items in order, with the
// edit shift applied once the world changed.
type stream struct {
	seed  uint64
	items []datasets.WorkItem
	pos   int
	batch int
	lw    *labWorld
	keep  uint64
}

func (s *stream) next() (datasets.WorkItem, error) {
	for {
		if s.pos >= len(s.items) {
			s.batch++
			items, err := datasets.Generate(s.seed*1000+uint64(s.batch), 20000)
			if err != nil {
				return datasets.WorkItem{}, err
			}
			s.items, s.pos = items, 0
		}
		it := s.items[s.pos]
		s.pos++
		it.Request.ID = fmt.Sprintf("b%d-%s", s.batch, it.Request.ID)
		if it.Request.Parent != "" {
			it.Request.Parent = fmt.Sprintf("b%d-%s", s.batch, it.Request.Parent)
		}
		if s.lw.editShift && s.lw.changed && it.Request.Mode == router.ModeGenerate {
			// keep one generation in four
			s.keep++
			if s.keep%4 != 0 {
				continue
			}
		}
		return it, nil
	}
}
