package gateway

import (
	"context"
	"strings"

	"github.com/routelab/routelab/events"
)

// drawn reports whether the request id falls in a sample of the given rate.
// FNV-1a alone is not enough: request ids differ only in their last
// characters, and FNV's last multiply leaves its top bits, which the draw
// reads, nearly unchanged by them, so whole runs of consecutive requests
// were drawn or skipped together (runs of 2,592 and more; 3.9-10.2% drawn
// at a rate of 5% over 100,000 ids, depending on the replica's id prefix).
// MurmurHash3's finalizer spreads every input bit over the whole word.
func drawn(id string, rate float64) bool {
	h := fnv1a(id)
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return float64(h>>11)/(1<<53) < rate
}

// fnv1a is hash/fnv's 64-bit FNV-1a of s, without the []byte copy that
// writing s through hash.Hash costs on every request.
func fnv1a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// stratum names the review-sampling stratum of a request: route (the model
// served), tier and experiment arm.
func stratum(model, tier string, arms []events.Arm) string {
	arm := "-"
	if len(arms) > 0 {
		parts := make([]string, len(arms))
		for i, a := range arms {
			parts[i] = a.Experiment + ":" + a.Arm
		}
		arm = strings.Join(parts, ",")
	}
	return model + "|" + tier + "|" + arm
}

// sampleRate is the most specific configured rate for the stratum of
// (model, tier, arms): the full "model|tier|arm", then "model|tier", then
// "model", then the default. Without per-stratum rates the stratum is not
// built at all (it is a string per request).
func (g *Gateway) sampleRate(model, tier string, arms []events.Arm) float64 {
	if len(g.cfg.SampleRates) == 0 {
		return g.cfg.SampleRate
	}
	for k := stratum(model, tier, arms); k != ""; {
		if r, ok := g.cfg.SampleRates[k]; ok {
			return r
		}
		i := strings.LastIndexByte(k, '|')
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return g.cfg.SampleRate
}

// audited reports whether an outcome is one failure audits over-sample: QA
// failed (the best image was served anyway), the request escalated, or an
// edit chain was reset.
func audited(o *Outcome) bool { return !o.QAPass || o.Escalated || o.Reset }

// sample marks the output for human review at its stratum's rate (raised by
// FailureBoost for an audited outcome; the rate drawn at is recorded in the
// decision, for inverse-probability weights) and stores
// its first image in the blob store, with the reference images the model
// was given (normalised; an edit's base image first) so reviewers see the
// reference next to the output. The draw hashes the request id, so it is
// deterministic and needs no shared random source.
func (g *Gateway) sample(ctx context.Context, o *Outcome, r *Request, dec *events.Decision, refs [][]byte) {
	rate := g.sampleRate(o.Model, string(r.Tier), o.Arms)
	if rate <= 0 || g.deps.Blobs == nil {
		return
	}
	if audited(o) && g.cfg.FailureBoost > 1 {
		rate = min(1, rate*g.cfg.FailureBoost)
	}
	if !drawn(r.ID, rate) {
		return
	}
	key, err := g.deps.Blobs.Put(ctx, o.Images[0].Bytes)
	if err != nil {
		g.log.Warn("store sampled image", "request_id", r.ID, "err", err)
		return
	}
	var refKeys []string
	for _, ref := range refs {
		k, err := g.deps.Blobs.Put(ctx, ref)
		if err != nil {
			// The output is still worth reviewing; the UI says a
			// reference is missing (ref_count > len(ref_keys)).
			g.log.Warn("store sampled reference", "request_id", r.ID, "err", err)
			continue
		}
		refKeys = append(refKeys, k)
	}
	o.Sampled, o.BlobKey = true, key
	dec.Sampled, dec.BlobKey, dec.RefKeys, dec.SampleRate = true, key, refKeys, rate
	g.m.sampled.Inc()
}
