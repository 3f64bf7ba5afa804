package dashboards

import (
	"bytes"
	"fmt"
	"image/color"
	"sort"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Chart size of every panel.
const (
	Width  = 7 * vg.Inch
	Height = 3.4 * vg.Inch
)

// SVG draws the frame. An empty frame draws a chart saying so, so a page
// never shows a broken image.
func SVG(fr Frame) ([]byte, error) {
	p := plot.New()
	p.Title.Text = fr.Panel.Title
	p.Y.Label.Text = fr.Panel.Unit
	p.Legend.Top = true
	p.Legend.Left = false
	p.Add(plotter.NewGrid())
	if fr.Rows == 0 {
		p.X.Label.Text = "no data for these filters"
		return write(p)
	}
	switch fr.Panel.Kind {
	case Bars:
		if err := addBars(p, fr.Series); err != nil {
			return nil, err
		}
	default:
		if err := addLines(p, fr); err != nil {
			return nil, err
		}
	}
	return write(p)
}

func write(p *plot.Plot) ([]byte, error) {
	wt, err := p.WriterTo(Width, Height, "svg")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// markEvery is the most points a series may have and still show a marker
// on each: sparse series (fresh traffic, a zoomed range) read as points.
const markEvery = 30

// addLines draws each series as a line, with a marker on every point when
// the series is sparse; a series of one point is a marker alone, since one
// point makes no line. A frame of one bucket spans a bucket either side.
func addLines(p *plot.Plot, fr Frame) error {
	var minT, maxT time.Time
	for i, s := range fr.Series {
		xys := make(plotter.XYs, len(s.Points))
		for j, pt := range s.Points {
			xys[j] = plotter.XY{X: float64(pt.T.Unix()), Y: pt.V}
			if minT.IsZero() || pt.T.Before(minT) {
				minT = pt.T
			}
			if pt.T.After(maxT) {
				maxT = pt.T
			}
		}
		c := plotutil.Color(i)
		if len(xys) == 1 {
			sc, err := plotter.NewScatter(xys)
			if err != nil {
				return fmt.Errorf("series %s: %w", s.Name, err)
			}
			sc.GlyphStyle = draw.GlyphStyle{Color: c, Radius: vg.Points(4), Shape: draw.CircleGlyph{}}
			p.Add(sc)
			p.Legend.Add(s.Name, sc)
			continue
		}
		l, pts, err := plotter.NewLinePoints(xys)
		if err != nil {
			return fmt.Errorf("series %s: %w", s.Name, err)
		}
		l.Color = c
		l.Width = vg.Points(1.5)
		p.Add(l)
		if len(xys) <= markEvery {
			pts.GlyphStyle = draw.GlyphStyle{Color: c, Radius: vg.Points(2.5), Shape: draw.CircleGlyph{}}
			p.Add(pts)
			p.Legend.Add(s.Name, l, pts)
		} else {
			p.Legend.Add(s.Name, l)
		}
	}
	span := maxT.Sub(minT)
	if span == 0 && fr.Step > 0 {
		span = 2 * fr.Step
		p.X.Min, p.X.Max = float64(minT.Add(-fr.Step).Unix()), float64(minT.Add(fr.Step).Unix())
	}
	format := "15:04"
	switch {
	case span > 48*time.Hour:
		format = "Jan 02"
	case span > 12*time.Hour:
		format = "02 15:04"
	case span <= 20*time.Minute:
		format = "15:04:05"
	}
	p.X.Tick.Marker = plot.TimeTicks{Format: format, Time: func(t float64) time.Time { return time.Unix(int64(t), 0).UTC() }}
	p.X.Label.Text = "time (UTC)"
	if fr.Step > 0 {
		p.X.Label.Text = fmt.Sprintf("time (UTC), %s buckets", shortDuration(fr.Step))
	}
	p.Y.Min = 0
	return nil
}

// shortDuration prints 10s, 1m, 1h, 24h rather than 1m0s, 1h0m0s.
func shortDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}

func addBars(p *plot.Plot, ss []Series) error {
	cats := map[string]bool{}
	for _, s := range ss {
		for _, pt := range s.Points {
			cats[pt.Label] = true
		}
	}
	names := make([]string, 0, len(cats))
	for c := range cats {
		names = append(names, c)
	}
	sort.Strings(names)
	idx := map[string]int{}
	for i, n := range names {
		idx[n] = i
	}
	w := vg.Points(float64(Width)*0.6/float64(len(names)*max(len(ss), 1)) + 1)
	if w > vg.Points(40) {
		w = vg.Points(40)
	}
	for i, s := range ss {
		vals := make(plotter.Values, len(names))
		for _, pt := range s.Points {
			vals[idx[pt.Label]] = pt.V
		}
		b, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return fmt.Errorf("series %s: %w", s.Name, err)
		}
		b.Color = plotutil.Color(i)
		b.LineStyle.Width = 0
		b.Offset = w * vg.Length(float64(i)-float64(len(ss)-1)/2)
		p.Add(b)
		p.Legend.Add(s.Name, b)
	}
	p.NominalX(names...)
	p.X.Min, p.X.Max = -0.6, float64(len(names))-0.4
	p.Legend.Left = true
	p.Y.Min = 0
	return nil
}

// BandPoint is an estimate with its interval at a time.
type BandPoint struct {
	T         time.Time
	V, Lo, Hi float64
}

// BandSVG draws an estimate over time with its interval shaded and a zero
// line: the effect-over-time chart of an experiment.
func BandSVG(title, unit string, pts []BandPoint) ([]byte, error) {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = unit
	p.Add(plotter.NewGrid())
	if len(pts) == 0 {
		p.X.Label.Text = "no data yet"
		return write(p)
	}
	sort.Slice(pts, func(i, j int) bool { return pts[i].T.Before(pts[j].T) })
	var line, upper, lower plotter.XYs
	for _, b := range pts {
		x := float64(b.T.Unix())
		line = append(line, plotter.XY{X: x, Y: b.V})
		upper = append(upper, plotter.XY{X: x, Y: b.Hi})
		lower = append(lower, plotter.XY{X: x, Y: b.Lo})
	}
	band := append(plotter.XYs{}, upper...)
	for i := len(lower) - 1; i >= 0; i-- {
		band = append(band, lower[i])
	}
	poly, err := plotter.NewPolygon(band)
	if err != nil {
		return nil, err
	}
	poly.Color = color.NRGBA{R: 36, G: 86, B: 214, A: 50}
	poly.LineStyle.Width = 0
	l, err := plotter.NewLine(line)
	if err != nil {
		return nil, err
	}
	l.Color = color.NRGBA{R: 36, G: 86, B: 214, A: 255}
	l.Width = vg.Points(2)
	zero := plotter.NewFunction(func(float64) float64 { return 0 })
	zero.Color = color.Gray{Y: 120}
	zero.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(poly, zero, l)
	p.Legend.Add("estimate", l)
	p.Legend.Add("95% interval", poly)
	p.Legend.Top = true
	p.X.Tick.Marker = plot.TimeTicks{Format: "Jan 02 15:04", Time: func(t float64) time.Time { return time.Unix(int64(t), 0).UTC() }}
	return write(p)
}
