package server

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/routelab/routelab/gateway"
)

// usageResponse is GET /v1/usage: the calling tenant's spend this UTC day
// and month against its budgets.
type usageResponse struct {
	Object  string      `json:"object"` // "usage"
	Tenant  string      `json:"tenant"`
	Daily   periodUsage `json:"daily"`
	Monthly periodUsage `json:"monthly"`
}

// periodUsage is one budget period. Spend includes the estimates of the
// tenant's requests in flight; budget and remaining are null without a
// budget.
type periodUsage struct {
	Period       string   `json:"period"` // 2026-12-06, or 2026-12
	SpentUSD     float64  `json:"spent_usd"`
	BudgetUSD    *float64 `json:"budget_usd"`
	RemainingUSD *float64 `json:"remaining_usd"`
	ResetsAt     string   `json:"resets_at"` // RFC 3339, UTC
}

func toPeriodUsage(p gateway.PeriodUsage, layout string) periodUsage {
	out := periodUsage{Period: p.Start.Format(layout), SpentUSD: p.SpentUSD, ResetsAt: p.Reset.Format(time.RFC3339)}
	if p.BudgetUSD > 0 {
		budget, remaining := p.BudgetUSD, p.RemainingUSD
		out.BudgetUSD, out.RemainingUSD = &budget, &remaining
	}
	return out
}

// usage answers GET /v1/usage for the key's tenant. It takes no
// parameters: one it does not know is refused rather than ignored.
func (h *handlers) usage(c *fiber.Ctx) error {
	var bad string
	c.Context().QueryArgs().VisitAll(func(k, _ []byte) {
		if bad == "" {
			bad = string(k)
		}
	})
	if bad != "" {
		return errInvalid(bad, "GET /v1/usage takes no parameters; it shows the calling key's tenant")
	}
	u, err := h.deps.Gateway.Usage(c.UserContext(), keyOf(c).Tenant)
	if err != nil {
		return err
	}
	return c.JSON(usageResponse{Object: "usage", Tenant: u.Tenant,
		Daily: toPeriodUsage(u.Day, time.DateOnly), Monthly: toPeriodUsage(u.Month, "2006-01")})
}
