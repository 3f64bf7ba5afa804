package console

import (
	"context"
	"encoding/base64"
	"html/template"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/sync/errgroup"

	"github.com/routelab/routelab/dashboards"
)

// panelView is one rendered chart on the dashboards page.
type panelView struct {
	ID, Title string
	SVG       template.URL // data: URI we made; the page is one request, charts included
	Rows      int
	TookMS    int64
	Err       string
}

type dashFilterView struct {
	From, To, Tenant, Experiment, Range string
	Query                               string
}

// parseFilter reads ?range=24h (or from/to as RFC 3339), tenant, experiment.
func (c *Console) parseFilter(ctx *fiber.Ctx) (dashboards.Filter, dashFilterView, error) {
	// Rounded to the minute so repeated views share cached panel results.
	now := c.deps.Now().UTC().Truncate(time.Minute).Add(time.Minute)
	f := dashboards.Filter{To: now, From: now.Add(-24 * time.Hour), Tenant: strings.TrimSpace(ctx.Query("tenant")), Experiment: strings.TrimSpace(ctx.Query("experiment"))}
	v := dashFilterView{Tenant: f.Tenant, Experiment: f.Experiment, Range: ctx.Query("range", "24h")}
	if from, to := ctx.Query("from"), ctx.Query("to"); from != "" || to != "" {
		ft, err1 := time.Parse(time.RFC3339, from)
		tt, err2 := time.Parse(time.RFC3339, to)
		if err1 != nil || err2 != nil {
			return f, v, &FieldError{Code: "bad_time", Field: "from", Message: "from and to are RFC 3339 times"}
		}
		f.From, f.To, v.Range = ft, tt, ""
	} else {
		d, err := time.ParseDuration(v.Range)
		if err != nil || d <= 0 {
			return f, v, &FieldError{Code: "bad_range", Field: "range", Message: "a duration such as 1h, 24h or 168h"}
		}
		f.From = now.Add(-d)
	}
	if err := f.Validate(); err != nil {
		fe := err.(*dashboards.FilterError)
		return f, v, &FieldError{Code: "bad_filter", Field: fe.Field, Message: fe.Message}
	}
	v.From, v.To = f.From.Format(time.RFC3339), f.To.Format(time.RFC3339)
	v.Query = ctx.Request().URI().QueryArgs().String()
	return f, v, nil
}

func (c *Console) dashboardsPage(ctx *fiber.Ctx) error {
	if c.deps.Data == nil {
		return errNoData
	}
	f, fv, err := c.parseFilter(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	views := make([]panelView, len(dashboards.Panels))
	g, gctx := errgroup.WithContext(ctx.UserContext())
	g.SetLimit(4)
	for i, p := range dashboards.Panels {
		g.Go(func() error {
			v := panelView{ID: p.ID, Title: p.Title}
			fr, err := c.runPanel(gctx, p, f)
			if err != nil {
				c.log.Warn("dashboard panel", "panel", p.ID, "err", err)
				v.Err = "query failed: see the console log"
				views[i] = v
				return nil
			}
			svg, err := dashboards.SVG(fr)
			if err != nil {
				return err
			}
			v.SVG = template.URL("data:image/svg+xml;base64," + base64.StdEncoding.EncodeToString(svg))
			v.Rows, v.TookMS = fr.Rows, fr.Took.Milliseconds()
			views[i] = v
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return c.render(ctx, "dashboards", "Dashboards", fiber.Map{
		"Panels": views, "Filter": fv, "TookMS": time.Since(start).Milliseconds(),
	})
}

// panelSVG serves one panel as an SVG image (for linking and embedding).
func (c *Console) panelSVG(ctx *fiber.Ctx) error {
	if c.deps.Data == nil {
		return errNoData
	}
	p, ok := dashboards.PanelByID(strings.TrimSuffix(ctx.Params("id"), ".svg"))
	if !ok {
		return errNotFound
	}
	f, _, err := c.parseFilter(ctx)
	if err != nil {
		return err
	}
	fr, err := c.runPanel(ctx.UserContext(), p, f)
	if err != nil {
		return err
	}
	svg, err := dashboards.SVG(fr)
	if err != nil {
		return err
	}
	ctx.Set("Content-Type", "image/svg+xml")
	ctx.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	return ctx.Send(svg)
}

func (c *Console) grafanaJSON(ctx *fiber.Ctx) error {
	db := "routelab"
	if c.deps.Data != nil {
		db = c.deps.Data.Database()
	}
	b, err := dashboards.Grafana(db)
	if err != nil {
		return err
	}
	ctx.Set("Content-Type", "application/json")
	ctx.Set("Content-Disposition", `attachment; filename="routelab-grafana.json"`)
	return ctx.Send(b)
}

// runPanel runs a panel, through the result cache when it is on.
func (c *Console) runPanel(ctx context.Context, p dashboards.Panel, f dashboards.Filter) (dashboards.Frame, error) {
	key := p.ID + "\x00" + p.SQLFor(c.deps.Data.Database(), f)
	if c.panels != nil {
		if fr, ok := c.panels.Get(key); ok {
			return fr, nil
		}
	}
	fr, err := dashboards.Run(ctx, c.deps.Data.Conn(), c.deps.Data.Database(), p, f)
	if err == nil && c.panels != nil {
		c.panels.Add(key, fr)
	}
	return fr, err
}
