package console

import (
	"errors"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/routelab/routelab/evaluator/review"
	"github.com/routelab/routelab/events"
)

// reviewView is what the review page and next.json show for one item. Other
// reviewers' scores are never part of it.
type reviewView struct {
	ID        string             `json:"id"`
	Prompt    string             `json:"prompt"`
	Mode      string             `json:"mode"`
	Tier      string             `json:"tier"`
	Image     string             `json:"image"`
	Parent    string             `json:"parent,omitempty"` // parent output image, for edits
	Refs      []refView          `json:"refs,omitempty"`   // the references the model got, when stored
	RefCount  int                `json:"ref_count"`
	EditDepth int                `json:"edit_depth"`
	Questions []review.ScoreDef  `json:"questions"`
	Progress  review.Progress    `json:"progress"`
	Expires   int64              `json:"lease_expires_ms"`
	Done      bool               `json:"done"`
	Answers   map[string]float64 `json:"-"`
}

// nextItem leases the reviewer's next item and describes it.
func (c *Console) nextItem(reviewer string) (reviewView, error) {
	l, err := c.scores.Next(reviewer)
	if errors.Is(err, review.ErrEmpty) {
		return reviewView{Done: true, Progress: c.scores.Progress(reviewer)}, nil
	}
	if err != nil {
		return reviewView{}, err
	}
	c.mu.Lock()
	o := c.itemCache[l.Item.ID]
	parent, hasParent := c.itemCache[o.ParentID]
	c.mu.Unlock()
	v := reviewView{
		ID: o.RequestID, Prompt: o.Prompt, Mode: o.Mode, Tier: o.Tier, Image: "/blob/" + o.BlobKey,
		RefCount: o.RefCount, EditDepth: o.EditDepth,
		Questions: review.DefaultRubric().For(o.TextHeavy, o.Mode == "edit" || o.Preserve),
		Progress:  c.scores.Progress(reviewer), Expires: l.Expires.UnixMilli(),
	}
	v.Refs = refViews(o)
	if hasParent && o.ParentID != "" && len(v.Refs) == 0 {
		v.Parent = "/blob/" + parent.BlobKey
	}
	return v, nil
}

// refView is one reference image shown next to the output.
type refView struct {
	URL     string `json:"url"`
	Caption string `json:"caption"`
}

// refViews are the stored references of a sampled output (serve stores
// them with the sample): a chained edit's base image first.
func refViews(o Output) []refView {
	out := make([]refView, 0, len(o.RefKeys))
	for i, k := range o.RefKeys {
		c := "reference " + strconv.Itoa(i+1)
		if i == 0 && o.ParentID != "" {
			c = "image edited (earlier output)"
		}
		out = append(out, refView{URL: "/blob/" + k, Caption: c})
	}
	return out
}

func (c *Console) reviewPage(ctx *fiber.Ctx) error {
	v, err := c.nextItem(currentUser(ctx).Name)
	if err != nil {
		return err
	}
	return c.render(ctx, "review", "Review", v)
}

func (c *Console) reviewNext(ctx *fiber.Ctx) error {
	v, err := c.nextItem(currentUser(ctx).Name)
	if err != nil {
		return err
	}
	return ctx.JSON(v)
}

type submitRequest struct {
	ID      string             `json:"id"`
	Scores  map[string]float64 `json:"scores"`
	Comment string             `json:"comment"`
}

func (c *Console) reviewSubmit(ctx *fiber.Ctx) error {
	var req submitRequest
	if err := ctx.BodyParser(&req); err != nil {
		return &FieldError{Code: "bad_json", Message: "body must be JSON {id, scores, comment}"}
	}
	if len(req.Comment) > 2000 {
		return &FieldError{Code: "too_long", Field: "comment", Message: "at most 2000 characters"}
	}
	reviewer := currentUser(ctx).Name
	c.mu.Lock()
	o, ok := c.itemCache[req.ID]
	c.mu.Unlock()
	if !ok {
		return &FieldError{Code: "unknown_item", Field: "id", Message: "no such review item", Status: fiber.StatusNotFound}
	}
	defs := review.DefaultRubric().For(o.TextHeavy, o.Mode == "edit" || o.Preserve)
	if err := review.Check(defs, req.Scores); err != nil {
		return err
	}
	if err := c.scores.Submit(reviewer, req.ID); err != nil {
		return err
	}
	ev := events.Review{
		Header: events.Header{EventID: newEventID(), SchemaVersion: events.SchemaVersion, TS: c.deps.Now().UnixMilli(),
			Tenant: o.Tenant, RequestID: o.RequestID},
		Kind: "score", Reviewer: reviewer, Rubric: review.DefaultRubric().Name, Model: o.Model, Arm: o.Arms,
		Overlap: review.IsOverlap(o.RequestID, c.cfg.OverlapRate), Comment: strings.TrimSpace(req.Comment),
	}
	for _, d := range defs {
		if v, ok := req.Scores[d.Name]; ok {
			ev.Scores = append(ev.Scores, events.Score{Name: d.Name, Value: v})
		}
	}
	if err := c.emit(ctx, ev); err != nil {
		return err
	}
	return ctx.JSON(fiber.Map{"ok": true, "progress": c.scores.Progress(reviewer)})
}

func (c *Console) reviewSkip(ctx *fiber.Ctx) error {
	var req struct {
		ID string `json:"id"`
	}
	if err := ctx.BodyParser(&req); err != nil || req.ID == "" {
		return &FieldError{Code: "bad_json", Field: "id", Message: "body must be JSON {id}"}
	}
	if err := c.scores.Skip(currentUser(ctx).Name, req.ID); err != nil {
		return err
	}
	return ctx.JSON(fiber.Map{"ok": true})
}

func (c *Console) emit(ctx *fiber.Ctx, ev events.Review) error {
	if c.deps.Reviews == nil {
		return &FieldError{Code: "no_event_sink", Message: "the console has no Kafka producer configured; scores cannot be recorded", Status: fiber.StatusServiceUnavailable}
	}
	return c.deps.Reviews.Emit(ctx.UserContext(), ev)
}
