package server

import (
	"fmt"
	"slices"
	"strings"

	"github.com/routelab/routelab/router"
)

// options are the OpenAI Images options a request passes to the vendors
// that have them (the GPT image models; style to dall-e-3). routelab acts
// on two itself: a transparent background routes only to models that can
// make one, and input_fidelity high is the native API's
// constraints.preserve_subject (either sets the other).
type options struct {
	background, moderation, inputFidelity, style, user string
}

var optionValues = map[string][]string{
	"background":     {"transparent", "opaque", "auto"},
	"moderation":     {"auto", "low"},
	"input_fidelity": {"high", "low"},
	"style":          {"vivid", "natural"},
}

func (h *handlers) validateOptions(r *imageRequest, j *job) error {
	given := map[string]string{"background": r.Background, "moderation": r.Moderation, "input_fidelity": r.InputFidelity, "style": r.Style}
	for field, v := range given {
		v = strings.ToLower(strings.TrimSpace(v))
		if v != "" && !slices.Contains(optionValues[field], v) {
			return errField(CodeInvalidField, field, fmt.Sprintf("%s must be one of %s", field, strings.Join(optionValues[field], ", ")))
		}
		given[field] = v
	}
	j.opts = options{background: given["background"], moderation: given["moderation"], inputFidelity: given["input_fidelity"], style: given["style"], user: r.User}
	switch {
	case j.opts.inputFidelity == "high":
		j.constraints.PreserveSubject = true
	case j.opts.inputFidelity == "" && j.constraints.PreserveSubject && j.mode == router.ModeEdit:
		j.opts.inputFidelity = "high"
	}
	if j.opts.background != "transparent" {
		return nil
	}
	if j.format == "jpeg" {
		return errField(CodeInvalidField, "background", "a transparent background needs output_format png or webp")
	}
	if j.pin != "" {
		if !h.catalog[j.pin].Transparent {
			return errField(CodeUnsupportedOption, "background", fmt.Sprintf("model %s cannot make a transparent background", j.pin))
		}
		return nil
	}
	for _, m := range h.catalog {
		if m.Transparent {
			return nil
		}
	}
	return errField(CodeUnsupportedOption, "background", "no model of this deployment can make a transparent background")
}

// validateCount refuses an n that the pinned model, or every model, cannot
// make in one request (catalog max_images); otherwise the router leaves
// out the models that cannot.
func (h *handlers) validateCount(j *job) error {
	if j.n <= 1 {
		return nil
	}
	fits := func(m Model) bool { return m.MaxImages == 0 || j.n <= m.MaxImages }
	if j.pin != "" {
		if m, ok := h.catalog[j.pin]; ok && !fits(m) {
			return errField(CodeUnsupportedOption, "n", fmt.Sprintf("model %s makes at most %s per request", j.pin, images(m.MaxImages)))
		}
		return nil
	}
	if len(h.catalog) == 0 {
		return nil
	}
	for _, m := range h.catalog {
		if fits(m) {
			return nil
		}
	}
	return errField(CodeUnsupportedOption, "n", fmt.Sprintf("no model of this deployment makes %d images per request", j.n))
}

// images is "1 image" or "n images".
func images(n int) string {
	if n == 1 {
		return "1 image"
	}
	return fmt.Sprintf("%d images", n)
}
