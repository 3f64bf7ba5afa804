// Package sim is routelab's simulated image provider and the lab's ground
// truth. World (world*.go) holds what the router must never see: each
// model's success probability per task, how edit chains decay, latency,
// error and rate-limit draws. The Provider adapter (provider.go) calls World
// and renders PNG bytes whose look follows the drawn quality.
package sim

import (
	"math"
	"strings"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/router"
)

// World is the hidden truth of the simulated world. It is immutable after
// NewWorld (but for a cache of pure results) and every draw is a pure
// function of (seed, call), so it is safe for concurrent use and replays
// reproduce.
type World struct {
	seed   uint64
	models map[string]*modelTruth
	// tasks remembers InferTask per (mode, prompt, refs): a pure function,
	// and about a thirty-substring scan that every call would repeat.
	tasks *lru.Cache[taskKey, string]
}

type taskKey struct {
	mode, prompt string
	refs         int
}

type modelTruth struct {
	m router.Model
	// p is the success probability per task on a fresh request.
	p map[string]float64
	// Edit-chain decay: P is multiplied by a logistic in the depth that is
	// 1/2 at depthHalf with scale depthScale, normalised to 1 at depth 1.
	depthHalf, depthScale float64
}

// Call is one simulated provider call.
type Call struct {
	RequestID string
	Model     string
	// Task is the hidden task; empty means "infer it from the request" (live
	// traffic through serve).
	Task       string
	Mode       string // generate | edit
	Prompt     string
	RefCount   int
	EditDepth  int
	Attempt    int
	Width      int
	Height     int
	Tier       string // draft | standard | premium: the price tier
	DeadlineMS int64  // 0: no deadline
}

// Outcome is what the call produced.
type Outcome struct {
	Success bool
	// Quality in [0,1]; Success is Quality >= SuccessQuality.
	Quality float64
	Latency time.Duration
	// ErrKind is set when no image came back; then Success is false and
	// CostUSD is 0.
	ErrKind providers.ErrorKind
	CostUSD float64
	Task    string // the task the world judged the call as
}

// SuccessQuality is the quality at and above which an image counts as a
// success (what QA plus a human reviewer would accept).
const SuccessQuality = 0.7

// NewWorld builds the world for a catalog. Models the world has no truth for
// get a flat 0.5 success probability.
func NewWorld(cat router.Catalog, seed uint64) *World {
	tasks, _ := lru.New[taskKey, string](4096)
	w := &World{seed: seed, models: map[string]*modelTruth{}, tasks: tasks}
	for _, m := range cat.Models {
		t, ok := truths[m.Name]
		if as, found := truths[m.SimulateAs]; !ok && found {
			t, ok = as, true
		}
		if !ok {
			t = truthSpec{p: map[string]float64{}, half: 7, scale: 0.8}
		}
		w.models[m.Name] = &modelTruth{m: m, p: t.p, depthHalf: t.half, depthScale: t.scale}
	}
	return w
}

// Tasks lists the world's tasks.
func Tasks() []string { return append([]string(nil), taskList...) }

// TrueP is the probability that model succeeds at task at edit depth depth
// (0 or 1 for a fresh request), before provider errors and deadlines.
func (w *World) TrueP(model, task string, depth int) float64 {
	t, ok := w.models[model]
	if !ok {
		return 0
	}
	p, ok := t.p[task]
	if !ok {
		p = 0.5
	}
	if depth > 1 {
		p *= decay(float64(depth), t.depthHalf, t.depthScale) / decay(1, t.depthHalf, t.depthScale)
	}
	return p
}

// SuccessP is TrueP times the chance that one call answers within
// deadlineMS (0: no deadline): the probability that routing the request to
// model alone yields a good image in time, provider errors aside.
func (w *World) SuccessP(model, task string, depth int, deadlineMS int64) float64 {
	p := w.TrueP(model, task, depth)
	t, ok := w.models[model]
	if !ok || deadlineMS <= 0 {
		return p
	}
	if t.m.LatencySigma == 0 {
		if float64(deadlineMS) < t.m.LatencyP50MS {
			return 0
		}
		return p
	}
	z := math.Log(float64(deadlineMS)/t.m.LatencyP50MS) / t.m.LatencySigma
	return p * 0.5 * math.Erfc(-z/math.Sqrt2)
}

func decay(d, half, scale float64) float64 {
	return 1 / (1 + math.Exp((d-half)/scale))
}

// inferTask is InferTask, remembered.
func (w *World) inferTask(mode, prompt string, refs int) string {
	k := taskKey{mode, prompt, refs}
	if t, ok := w.tasks.Get(k); ok {
		return t
	}
	t := InferTask(mode, prompt, refs)
	w.tasks.Add(k, t)
	return t
}

// Call simulates one provider call.
func (w *World) Call(c Call) Outcome {
	t, ok := w.models[c.Model]
	task := c.Task
	if task == "" {
		task = w.inferTask(c.Mode, c.Prompt, c.RefCount)
	}
	out := Outcome{Task: task}
	if !ok {
		out.ErrKind = providers.KindBadRequest
		return out
	}
	m := &t.m
	base := w.key(c.RequestID, c.Model, c.Attempt)
	uErr := unit(splitmix(base ^ 0x1))
	uLat := unit(splitmix(base ^ 0x2))
	uQ := unit(splitmix(base ^ 0x3))
	uQ2 := unit(splitmix(base ^ 0x4))

	z := math.Sqrt2 * math.Erfinv(2*uLat-1)
	latMS := m.LatencyP50MS * math.Exp(m.LatencySigma*z)
	switch {
	case uErr < m.ErrorRate:
		out.ErrKind = providers.KindUnavailable
		out.Latency = ms(latMS * 0.2)
		return out
	case uErr < m.ErrorRate+m.RateLimitRate:
		out.ErrKind = providers.KindRateLimited
		out.Latency = ms(30 + 40*uQ2)
		return out
	case uErr < m.ErrorRate+m.RateLimitRate+m.RefusalRate:
		out.ErrKind = providers.KindContentPolicy
		out.Latency = ms(latMS * 0.3) // the safety filter runs after part of the work
		return out
	}
	if c.DeadlineMS > 0 && latMS > float64(c.DeadlineMS) {
		out.ErrKind = providers.KindTimeout
		out.Latency = ms(float64(c.DeadlineMS))
		return out
	}
	out.Latency = ms(latMS)
	out.CostUSD = price(m, c.Width, c.Height, c.Tier)
	p := w.TrueP(c.Model, task, c.EditDepth)
	if uQ < p {
		out.Success = true
		out.Quality = SuccessQuality + (1-SuccessQuality)*uQ2
	} else {
		out.Quality = SuccessQuality * uQ2
	}
	return out
}

func ms(x float64) time.Duration { return time.Duration(x * float64(time.Millisecond)) }

// price is the catalog price of one image; sizes the model does not list
// are priced per pixel from its 1024x1024 price.
func price(m *router.Model, w, h int, tier string) float64 {
	if w <= 0 || h <= 0 {
		w, h = 1024, 1024
	}
	t := router.Tier(tier)
	if t == "" {
		t = router.TierStandard
	}
	if byTier, ok := m.CostUSD[sizeKey(w, h)]; ok {
		if c, ok := byTier[t]; ok {
			return c
		}
	}
	base := m.CostUSD["1024x1024"][t]
	return base * float64(w*h) / (1024 * 1024)
}

func sizeKey(w, h int) string {
	return itoa(w) + "x" + itoa(h)
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return string(b[i:])
}

// key mixes the world seed and the call's identity.
func (w *World) key(id, model string, attempt int) uint64 {
	h := uint64(14695981039346656037) ^ w.seed*0x9e3779b97f4a7c15
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	h ^= 0xfe
	h *= 1099511628211
	for i := 0; i < len(model); i++ {
		h ^= uint64(model[i])
		h *= 1099511628211
	}
	return splitmix(h ^ uint64(attempt)*0xbf58476d1ce4e5b9)
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// unit maps a hash to (0,1).
func unit(x uint64) float64 { return (float64(x>>11) + 0.5) / (1 << 53) }

// InferTask is the world's hidden judgement of what a live request is,
// used when a call carries no task (traffic that did not come from a
// workload file). The router never sees it.
func InferTask(mode, prompt string, refs int) string {
	p := strings.ToLower(prompt)
	has := func(words ...string) bool {
		for _, w := range words {
			if strings.Contains(p, w) {
				return true
			}
		}
		return false
	}
	if mode == string(router.ModeEdit) {
		if refs >= 2 || has("keep", "same", "preserve", "unchanged", "identity") {
			return TaskSubjectEdit
		}
		return TaskStyleEdit
	}
	quoted := quotedWords(p)
	switch {
	case quoted > 6 || has("menu", "infographic", "brochure", "flyer", "diagram", "chart"):
		return TaskTextLayout
	case quoted > 0 || has(" says", "sign ", "poster", "banner", "logo", "headline", "lettering"):
		return TaskTextRender
	case has("abstract", "background", "gradient", "pattern", "wallpaper", "texture"):
		return TaskAbstract
	case has("avatar", "portrait", "headshot", "profile picture", "icon"):
		return TaskAvatar
	case has("photo", "photograph", "realistic", "dslr", "product", "85mm", "35mm"):
		return TaskPhotoreal
	}
	return TaskIllustration
}

func quotedWords(p string) int {
	n, in, inWord := 0, false, false
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '"' {
			in = !in
			inWord = false
			continue
		}
		if !in {
			continue
		}
		if c == ' ' {
			inWord = false
		} else if !inWord {
			inWord = true
			n++
		}
	}
	return n
}
