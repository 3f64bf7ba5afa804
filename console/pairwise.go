package console

import (
	"errors"

	"github.com/gofiber/fiber/v2"
	"github.com/routelab/routelab/evaluator/review"
	"github.com/routelab/routelab/events"
)

type pairView struct {
	ID          string
	Prompt      string
	Left, Right string    // image URLs; model names stay hidden
	Refs        []refView // the references both outputs were made from (edits)
	Progress    review.Progress
	Done        bool
	Last        *PairReveal
}

func (c *Console) pairwisePage(ctx *fiber.Ctx) error {
	reviewer := currentUser(ctx).Name
	c.mu.Lock()
	last, hasLast := c.revealed[reviewer]
	delete(c.revealed, reviewer)
	c.mu.Unlock()
	v := pairView{}
	if hasLast {
		v.Last = &last
	}
	l, err := c.pairs.Next(reviewer)
	switch {
	case errors.Is(err, review.ErrEmpty):
		v.Done = true
	case err != nil:
		return err
	default:
		c.mu.Lock()
		p := c.pairCache[l.Item.ID]
		c.mu.Unlock()
		left, right := p.A, p.B
		if c.swapped(reviewer, p.ID) {
			left, right = right, left
		}
		v.ID, v.Prompt, v.Left, v.Right = p.ID, p.A.Prompt, "/blob/"+left.BlobKey, "/blob/"+right.BlobKey
		v.Refs = refViews(p.A) // pairs share their references (formPairs' key)
	}
	v.Progress = c.pairs.Progress(reviewer)
	return c.render(ctx, "pairwise", "Pairwise", v)
}

func (c *Console) pairwiseSubmit(ctx *fiber.Ctx) error {
	var req struct {
		ID     string `json:"id"`
		Choice string `json:"choice"` // left | right | tie | skip
	}
	if err := ctx.BodyParser(&req); err != nil {
		return &FieldError{Code: "bad_json", Message: "body must be JSON {id, choice}"}
	}
	reviewer := currentUser(ctx).Name
	c.mu.Lock()
	p, ok := c.pairCache[req.ID]
	c.mu.Unlock()
	if !ok {
		return &FieldError{Code: "unknown_item", Field: "id", Message: "no such pair", Status: fiber.StatusNotFound}
	}
	if req.Choice == "skip" {
		if err := c.pairs.Skip(reviewer, req.ID); err != nil {
			return err
		}
		return ctx.JSON(fiber.Map{"ok": true})
	}
	if req.Choice != "left" && req.Choice != "right" && req.Choice != "tie" {
		return &FieldError{Code: "bad_choice", Field: "choice", Message: "one of left, right, tie, skip"}
	}
	if err := c.pairs.Submit(reviewer, req.ID); err != nil {
		return err
	}
	left, right := p.A, p.B
	if c.swapped(reviewer, p.ID) {
		left, right = right, left
	}
	ev := events.Review{
		Header: events.Header{EventID: newEventID(), SchemaVersion: events.SchemaVersion, TS: c.deps.Now().UnixMilli(),
			Tenant: left.Tenant, RequestID: left.RequestID},
		Kind: "pairwise", Reviewer: reviewer, Model: left.Model, Arm: left.Arms,
		OtherRequestID: right.RequestID, OtherModel: right.Model, Preference: req.Choice,
		Overlap: review.IsOverlap(p.ID, c.cfg.OverlapRate),
	}
	if err := c.emit(ctx, ev); err != nil {
		return err
	}
	reveal := PairReveal{Left: left.Model, Right: right.Model, Choice: req.Choice}
	c.mu.Lock()
	c.revealed[reviewer] = reveal
	c.mu.Unlock()
	return ctx.JSON(fiber.Map{"ok": true, "left": reveal.Left, "right": reveal.Right})
}
