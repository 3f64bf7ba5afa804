package server

import (
	"math"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/routelab/routelab/gateway"
)

type feedbackRequest struct {
	RequestID string   `json:"request_id"`
	Signal    string   `json:"signal"`
	Value     *float64 `json:"value"`
	Comment   string   `json:"comment"`
	User      string   `json:"user"`
}

var signals = map[string]float64{ // default value of each signal
	"thumbs_up": 1, "thumbs_down": -1, "download": 1, "regenerate": -1, "edit": 0, "report": -1,
}

// feedback records a user signal about a served request as a signal event,
// keyed by the request id so it lands next to the decision.
func (h *handlers) feedback(c *fiber.Ctx) error {
	var r feedbackRequest
	if err := decodeJSON(c, &r); err != nil {
		return err
	}
	r.RequestID = strings.TrimSpace(r.RequestID)
	if r.RequestID == "" || len(r.RequestID) > 128 {
		return errInvalid("request_id", "request_id is required")
	}
	def, ok := signals[r.Signal]
	if !ok {
		return errField("invalid_signal", "signal", "signal must be thumbs_up, thumbs_down, download, regenerate, edit or report")
	}
	v := def
	if r.Value != nil {
		if math.IsNaN(*r.Value) || math.IsInf(*r.Value, 0) {
			return errInvalid("value", "value must be a finite number")
		}
		v = *r.Value
	}
	if len(r.Comment) > 4000 || len(r.User) > 256 {
		return errInvalid("comment", "comment or user too long")
	}
	dup, err := h.deps.Gateway.Feedback(gateway.Signal{RequestID: r.RequestID, Tenant: keyOf(c).Tenant, Kind: r.Signal, Value: v, Comment: r.Comment, User: r.User})
	if err != nil {
		return err
	}
	status := "accepted"
	if dup {
		status = "duplicate"
	}
	return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"id": requestID(c), "request_id": r.RequestID, "signal": r.Signal, "status": status})
}

type modelsResponse struct {
	Object string      `json:"object"`
	Data   []modelInfo `json:"data"`
}

type modelInfo struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
	// CostUSD is the catalog's price of one image by size and quality
	// tier; Simulated says the simulator serves the model (a vendor model
	// without a key). Extensions to OpenAI's shape, which SDKs ignore.
	CostUSD   map[string]map[string]float64 `json:"cost_usd,omitempty"`
	Simulated bool                          `json:"simulated,omitempty"`
	// Price is auto's: what an image routed by the live policy costs.
	Price *AutoPrice `json:"price,omitempty"`
}

// AutoPrice is the price of "auto" in GET /v1/models: the live policy
// decides the model, so it is a range (the cheapest and dearest image
// among the models the policy routes between) and, for a trained policy,
// the expected cost per quality tier at its chosen thresholds, measured
// on held-out traffic when it was trained. An escalation after a QA
// failure adds a second attempt's cost to a request.
type AutoPrice struct {
	PolicyVersion string             `json:"policy_version"`
	Basis         string             `json:"basis"`
	MinUSD        float64            `json:"min_usd"`
	MaxUSD        float64            `json:"max_usd"`
	ExpectedUSD   map[string]float64 `json:"expected_usd,omitempty"`
}

// models lists "auto" (routed) and every catalog model (a pin), in the
// shape of OpenAI's model list.
func (h *handlers) models(c *fiber.Ctx) error {
	auto := modelInfo{ID: "auto", Object: "model", OwnedBy: "routelab"}
	if h.deps.AutoPrice != nil {
		auto.Price = h.deps.AutoPrice()
	}
	resp := modelsResponse{Object: "list", Data: []modelInfo{auto}}
	for _, m := range h.deps.Catalog {
		owner := m.Provider
		if owner == "" {
			owner = "routelab"
		}
		resp.Data = append(resp.Data, modelInfo{ID: m.Name, Object: "model", OwnedBy: owner, CostUSD: m.CostUSD, Simulated: m.Simulated})
	}
	return c.JSON(resp)
}
