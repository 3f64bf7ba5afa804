package jobs

import "github.com/go-faster/city"

// Logged is one labelled decision, as OPE replays it.
type Logged struct {
	RequestID  string
	TS         int64
	Tenant     string
	Mode       string
	Tier       string
	Prompt     string
	RefCount   int
	EditDepth  int
	Aspect     float64
	TextHeavy  bool
	Preserve   bool
	MaxLatency int64
	MaxCost    float64
	Model      string
	Propensity float64
	PolicyP    float64 // the logging policy's calibrated P of the chosen model
	Y          float64
	CandModels []string  // the logged candidates, for replaying the request's size
	CandCosts  []float64 // their logged prices
	Holdout    bool      // in the held-out fifth
}

// HoldoutMod: a decision is held out from fitting, for before/after
// metrics and OPE, when the ClickHouse cityHash64 of its request id is 0
// modulo HoldoutMod (one in five). Holdout computes the same in process.
const HoldoutMod = 5

// Holdout says whether request id is in the held-out fifth: cityHash64
// as ClickHouse computes it (go-faster/city's CH64), so the split is the
// same whichever source read the decision.
func Holdout(id string) bool { return city.CH64([]byte(id))%HoldoutMod == 0 }
