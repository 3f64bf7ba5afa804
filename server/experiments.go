package server

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/routelab/routelab/experiments"
)

// Experiment admin API (behind the admin token):
//
//	GET  /admin/experiments              list
//	POST /admin/experiments              create from a spec; 201 with the stored spec
//	GET  /admin/experiments/:id          show
//	PUT  /admin/experiments/:id          replace the definition (may start a new phase)
//	POST /admin/experiments/:id/start    and pause, stop ({"reason"}), ramp ({"traffic"} or {} for the next step), rollback
//
// Every write returns once the change is committed to the experiments topic
// and applied on this replica, and is audited.

// ExperimentRegistry is the control plane the admin API writes through
// (experiments.Registry).
type ExperimentRegistry interface {
	List() []experiments.Spec
	Get(id string) (experiments.Spec, error)
	Create(ctx context.Context, s experiments.Spec, actor string) (experiments.Spec, error)
	Update(ctx context.Context, id string, s experiments.Spec, actor string) (experiments.Spec, error)
	Transition(ctx context.Context, id string, to experiments.Status, actor, reason string) (experiments.Spec, error)
	RampTo(ctx context.Context, id string, traffic float64, actor, reason string) (experiments.Spec, error)
	Rollback(ctx context.Context, id, actor, reason string) (experiments.Spec, error)
	Reweight(ctx context.Context, id string, outcomes map[string][]experiments.ArmOutcomes, actor string) (experiments.Spec, bool, error)
}

var _ ExperimentRegistry = (*experiments.Registry)(nil)

// experimentRoutes registers the experiment admin API on the admin group.
func experimentRoutes(admin fiber.Router, h *handlers) {
	admin.Get("/experiments", h.experimentList)
	admin.Post("/experiments", h.experimentCreate)
	admin.Get("/experiments/:id", h.experimentGet)
	admin.Put("/experiments/:id", h.experimentUpdate)
	admin.Post("/experiments/:id/:action", h.experimentAction)
}

var errNoExperiments = &Error{Status: fiber.StatusNotFound, Code: CodeNotFound, Message: "no experiments control plane on this server"}

// experimentError maps the experiments package's errors to HTTP.
func experimentError(err error) error {
	var ve *experiments.ValidationError
	switch {
	case errors.As(err, &ve):
		status := fiber.StatusBadRequest
		if ve.Code == "invalid_transition" || ve.Code == "layer_full" || ve.Code == "duplicate_id" {
			status = fiber.StatusConflict
		}
		return &Error{Status: status, Code: ve.Code, Field: ve.Field, Message: ve.Message}
	case errors.Is(err, experiments.ErrNotFound):
		return &Error{Status: fiber.StatusNotFound, Code: CodeNotFound, Field: "id", Message: "no such experiment"}
	case errors.Is(err, experiments.ErrConflict):
		return &Error{Status: fiber.StatusConflict, Code: "conflict", Message: err.Error()}
	}
	return err
}

func (h *handlers) experimentList(c *fiber.Ctx) error {
	if h.deps.Experiments == nil {
		return errNoExperiments
	}
	status := c.Query("status")
	out := []experiments.Spec{}
	for _, s := range h.deps.Experiments.List() {
		if status == "" || string(s.Status) == status {
			out = append(out, s)
		}
	}
	return c.JSON(fiber.Map{"experiments": out})
}

func (h *handlers) experimentGet(c *fiber.Ctx) error {
	if h.deps.Experiments == nil {
		return errNoExperiments
	}
	s, err := h.deps.Experiments.Get(c.Params("id"))
	if err != nil {
		return experimentError(err)
	}
	return c.JSON(s)
}

func (h *handlers) parseSpec(c *fiber.Ctx) (experiments.Spec, error) {
	if !isJSON(c) {
		return experiments.Spec{}, &Error{Status: fiber.StatusUnsupportedMediaType, Code: CodeUnsupportedMedia, Message: "Content-Type must be application/json"}
	}
	s, err := experiments.ParseSpec(c.Body()) // copies every string out of the body
	if err != nil {
		return experiments.Spec{}, experimentError(err)
	}
	// A pin to a model this server does not serve would route the arm's
	// requests by the live policy and call it the pinned model's result.
	// (An admin-only server, with no catalog, cannot tell.)
	for i, a := range s.Arms {
		if len(h.catalog) == 0 {
			break
		}
		if m := a.Overrides.Model; m != "" {
			if _, ok := h.catalog[m]; !ok {
				return experiments.Spec{}, errField(CodeUnknownModel, fmt.Sprintf("arms[%d].overrides.model", i), fmt.Sprintf("unknown model %q; GET /v1/models lists them", m))
			}
		}
	}
	return s, nil
}

func (h *handlers) experimentCreate(c *fiber.Ctx) error {
	if h.deps.Experiments == nil {
		return errNoExperiments
	}
	s, err := h.parseSpec(c)
	if err != nil {
		return err
	}
	s, err = h.deps.Experiments.Create(c.UserContext(), s, actor(c))
	if err != nil {
		return experimentError(err)
	}
	return c.Status(fiber.StatusCreated).JSON(s)
}

func (h *handlers) experimentUpdate(c *fiber.Ctx) error {
	if h.deps.Experiments == nil {
		return errNoExperiments
	}
	s, err := h.parseSpec(c)
	if err != nil {
		return err
	}
	s, err = h.deps.Experiments.Update(c.UserContext(), strings.Clone(c.Params("id")), s, actor(c))
	if err != nil {
		return experimentError(err)
	}
	return c.JSON(s)
}

type experimentActionRequest struct {
	Reason  string  `json:"reason"`
	Traffic float64 `json:"traffic"`
	// Outcomes are a bandit's per-stratum outcomes (reweight).
	Outcomes map[string][]experiments.ArmOutcomes `json:"outcomes"`
}

func (h *handlers) experimentAction(c *fiber.Ctx) error {
	if h.deps.Experiments == nil {
		return errNoExperiments
	}
	var r experimentActionRequest
	if len(c.Body()) > 0 {
		if err := decodeJSON(c, &r); err != nil {
			return err
		}
	}
	if len(r.Reason) > 1000 {
		return errInvalid("reason", "reason is limited to 1000 characters")
	}
	id, who, ctx := strings.Clone(c.Params("id")), actor(c), c.UserContext()
	var (
		s   experiments.Spec
		err error
	)
	switch c.Params("action") {
	case "start":
		s, err = h.deps.Experiments.Transition(ctx, id, experiments.StatusRunning, who, r.Reason)
	case "pause":
		s, err = h.deps.Experiments.Transition(ctx, id, experiments.StatusPaused, who, r.Reason)
	case "stop":
		s, err = h.deps.Experiments.Transition(ctx, id, experiments.StatusStopped, who, r.Reason)
	case "ramp":
		if r.Traffic < 0 || r.Traffic > 1 {
			return errInvalid("traffic", "traffic must be in (0, 1]; omit it for the next ramp step")
		}
		s, err = h.deps.Experiments.RampTo(ctx, id, r.Traffic, who, r.Reason)
	case "rollback":
		s, err = h.deps.Experiments.Rollback(ctx, id, who, r.Reason)
	case "reweight":
		// the registry applies the schedule: an early call changes nothing
		s, _, err = h.deps.Experiments.Reweight(ctx, id, r.Outcomes, who)
	default:
		return &Error{Status: fiber.StatusNotFound, Code: CodeNotFound, Field: "action", Message: "action must be start, pause, stop, ramp, rollback or reweight"}
	}
	if err != nil {
		return experimentError(err)
	}
	return c.JSON(s)
}
