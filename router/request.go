// Package router is routelab's routing brain: it turns one image request into
// a routing decision under a versioned policy. It is pure: no sockets, no
// files, no clocks; the server, the simulator and the offline jobs all call
// the same Decide.
package router

// Mode is what the caller asks for.
type Mode string

const (
	ModeGenerate Mode = "generate"
	ModeEdit     Mode = "edit"
)

// Tier is the caller's quality tier; each tier has its own threshold.
type Tier string

const (
	TierDraft    Tier = "draft"
	TierStandard Tier = "standard"
	TierPremium  Tier = "premium"
)

// Constraints are the caller's explicit limits and hints.
type Constraints struct {
	TextHeavy       bool    `json:"text_heavy,omitempty"`
	PreserveSubject bool    `json:"preserve_subject,omitempty"`
	MaxLatencyMS    int64   `json:"max_latency_ms,omitempty"`
	MaxCostUSD      float64 `json:"max_cost_usd,omitempty"`
}

// Request is everything the router may look at. It is built once by the
// server (or read from a workload file by the simulator); the task a request
// really is stays hidden from the router.
type Request struct {
	ID          string      `json:"id"`
	Tenant      string      `json:"tenant,omitempty"`
	Unit        string      `json:"unit,omitempty"` // experiment unit id
	Mode        Mode        `json:"mode"`
	Prompt      string      `json:"prompt"`
	RefCount    int         `json:"ref_count,omitempty"`
	Width       int         `json:"width,omitempty"`
	Height      int         `json:"height,omitempty"`
	Tier        Tier        `json:"tier,omitempty"`
	Constraints Constraints `json:"constraints,omitempty"`
	Pin         string      `json:"pin,omitempty"`        // explicit model pin
	EditDepth   int         `json:"edit_depth,omitempty"` // 0 for a fresh request
	Parent      string      `json:"parent,omitempty"`     // edit chain: the request whose output is edited
	// Transparent: the image must have a transparent background.
	Transparent bool `json:"transparent,omitempty"`
	// N is the number of images asked for (0 counts as 1).
	N int `json:"n,omitempty"`
}
