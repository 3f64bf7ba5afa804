package experiments

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"
)

// SpecVersion is the version of the spec document format this build writes
// and reads.
const SpecVersion = 1

// Status is an experiment's lifecycle state. Only running experiments assign
// units; a stopped experiment never runs again.
type Status string

const (
	StatusDraft   Status = "draft"
	StatusRunning Status = "running"
	StatusPaused  Status = "paused"
	StatusStopped Status = "stopped"
)

// UnitKind says which id of a request is hashed for assignment.
type UnitKind string

const (
	UnitUser    UnitKind = "user"
	UnitTenant  UnitKind = "tenant"
	UnitRequest UnitKind = "request"
)

// Spec is one experiment: a versioned JSON document. ID, Salt, Buckets,
// Phase, Revision and the timestamps are filled in by the control plane.
type Spec struct {
	SchemaVersion int    `json:"schema_version"`
	ID            string `json:"id,omitempty"`
	Revision      int    `json:"revision,omitempty"` // bumped on every change
	Name          string `json:"name"`
	Owner         string `json:"owner"`
	Hypothesis    string `json:"hypothesis"`

	// Layer names the set of mutually exclusive experiments this one belongs
	// to; LayerShare is the fraction of the layer it reserves, as the bucket
	// range Buckets (chosen first-fit when the experiment is created).
	Layer      string  `json:"layer"`
	LayerShare float64 `json:"layer_share,omitempty"`
	Buckets    *Range  `json:"buckets,omitempty"`
	// Traffic is the fraction of units in the reserved range that enter the
	// experiment. Raising it keeps units where they were; a canary's ramp
	// sets it step by step.
	Traffic float64 `json:"traffic"`
	Salt    string  `json:"salt,omitempty"`

	Targeting Targeting `json:"targeting"`
	Unit      UnitKind  `json:"unit"`
	Arms      []Arm     `json:"arms"`
	Control   string    `json:"control,omitempty"` // control arm name; default the first arm

	PrimaryMetric string      `json:"primary_metric"`
	Guardrails    []Guardrail `json:"guardrails,omitempty"`
	// LatencyBudgetsMS override the tiers' default latency budgets (draft
	// 10 s, standard 30 s, premium 60 s) for "success within the latency
	// budget"; a request's own max_latency_ms still comes first.
	LatencyBudgetsMS *LatencyBudgetsMS `json:"latency_budgets_ms,omitempty"`
	MinSample        int               `json:"min_sample"` // units per arm before a decision

	Status Status `json:"status"`
	Ramp   *Ramp  `json:"ramp,omitempty"`

	// Kind is fixed (the default) or bandit; a bandit's allocation is in
	// Bandit.
	Kind   Kind    `json:"kind,omitempty"`
	Bandit *Bandit `json:"bandit,omitempty"`
	Shadow *Shadow `json:"shadow,omitempty"`

	// Phase counts analysis phases: a change that would bias a running
	// analysis (re-weighting, dropping or adding an arm, new targeting)
	// starts a new phase with a fresh arm salt; analyses read one phase.
	Phase        int    `json:"phase,omitempty"`
	PhaseStarted int64  `json:"phase_started_ms,omitempty"`
	StopReason   string `json:"stop_reason,omitempty"`
	RolledBack   bool   `json:"rolled_back,omitempty"`
	CreatedMS    int64  `json:"created_ms,omitempty"`
	UpdatedMS    int64  `json:"updated_ms,omitempty"`
}

// Range is a half-open range of layer buckets [Start, End).
type Range struct {
	Start int `json:"start"`
	End   int `json:"end"`
}

// Width is the number of buckets in the range.
func (r Range) Width() int { return r.End - r.Start }

func (r Range) overlaps(o Range) bool { return r.Start < o.End && o.Start < r.End }

// Targeting restricts who can enter an experiment. Empty lists match all.
type Targeting struct {
	Tenants  []string    `json:"tenants,omitempty"`
	Modes    []string    `json:"modes,omitempty"` // generate | edit
	Tiers    []string    `json:"tiers,omitempty"` // draft | standard | premium
	Features []Predicate `json:"features,omitempty"`
}

// Predicate compares one request feature with a value; all predicates must
// hold. Booleans compare as 1 (true) and 0 (false).
type Predicate struct {
	Feature string `json:"feature"`
	Op      string `json:"op"` // eq ne lt le gt ge
	Value   Num    `json:"value"`
}

// Num is a number in JSON that also accepts true/false (as 1/0).
type Num float64

// UnmarshalJSON accepts a number or a boolean.
func (n *Num) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "true":
		*n = 1
		return nil
	case "false":
		*n = 0
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("value must be a number or a boolean")
	}
	*n = Num(f)
	return nil
}

// Arm is one variant and what it changes in routing.
type Arm struct {
	Name        string    `json:"name"`
	Weight      float64   `json:"weight"`
	Description string    `json:"description,omitempty"`
	Overrides   Overrides `json:"overrides,omitempty"`
}

// Overrides is what an arm changes for the requests assigned to it. Zero
// values mean "leave as the live policy has it".
type Overrides struct {
	PolicyVersion string             `json:"policy_version,omitempty"`
	Thresholds    map[string]float64 `json:"thresholds,omitempty"` // tier -> threshold
	Model         string             `json:"model,omitempty"`      // pin every request to this model
	Epsilon       *float64           `json:"epsilon,omitempty"`
}

// IsZero reports whether the overrides change nothing.
func (o Overrides) IsZero() bool {
	return o.PolicyVersion == "" && len(o.Thresholds) == 0 && o.Model == "" && o.Epsilon == nil
}

// Guardrail is a limit on a metric of every treatment arm. It is breached
// when, with at least MinUnits units in the arm, the arm's value exceeds Max,
// or exceeds the control's value by more than MaxIncrease (absolute).
type Guardrail struct {
	Metric      string   `json:"metric"`
	Max         *float64 `json:"max,omitempty"`
	MaxIncrease *float64 `json:"max_increase,omitempty"`
	MinUnits    int      `json:"min_units,omitempty"`
}

// Ramp makes an experiment a canary: Traffic follows Steps; the monitor
// moves to the next step once the current one has lasted MinDuration and
// every arm has MinUnits units, while guardrails hold, and stops the
// experiment (rolled back) on a breach.
type Ramp struct {
	Steps         []float64 `json:"steps"`
	MinDuration   Duration  `json:"min_duration"`
	MinUnits      int       `json:"min_units"`
	Step          int       `json:"step"`
	StepStartedMS int64     `json:"step_started_ms,omitempty"`
	Done          bool      `json:"done,omitempty"`
}

// Duration is a time.Duration written as a Go duration string ("10m").
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a duration string or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("invalid duration %q", s)
		}
		*d = Duration(v)
		return nil
	}
	var secs float64
	if err := json.Unmarshal(b, &secs); err != nil {
		return fmt.Errorf("duration must be a string like \"10m\" or seconds")
	}
	*d = Duration(secs * float64(time.Second))
	return nil
}

// Metrics the analysis computes; primary metrics and guardrails name them.
var Metrics = map[string]string{
	"success_rate":     "share of requests that returned an image that passed QA",
	"qa_pass_rate":     "share of requests whose QA passed",
	"thumbs_up_rate":   "thumbs-up signals per request",
	"thumbs_down_rate": "thumbs-down signals per request",
	"escalation_rate":  "share of requests escalated to another model",
	"error_rate":       "share of requests that ended in an error",
	"qa_fail_rate":     "share of requests whose QA failed",
	"cost_per_image":   "USD per returned image",
	"latency_ms":       "mean latency per request",
	"latency_p50_ms":   "median latency",
	"latency_p95_ms":   "95th percentile latency",
}

// ValidationError is a spec or request problem with a stable code and the
// JSON field it concerns.
type ValidationError struct {
	Code    string
	Field   string
	Message string
}

func (e *ValidationError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

func invalid(code, field, format string, args ...any) *ValidationError {
	return &ValidationError{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Errors the control plane returns besides *ValidationError.
var (
	ErrNotFound = errors.New("experiment not found")
	ErrConflict = errors.New("conflicting change")
)

// ParseSpec decodes a spec strictly (unknown fields are an error) and
// validates it.
func ParseSpec(b []byte) (Spec, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return Spec{}, invalid("invalid_json", "", "empty spec")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var s Spec
	if err := dec.Decode(&s); err != nil {
		return Spec{}, decodeError(err)
	}
	if dec.More() {
		return Spec{}, invalid("invalid_json", "", "trailing data after the spec")
	}
	s.Normalize()
	if err := s.Validate(); err != nil {
		return Spec{}, err
	}
	return s, nil
}

func decodeError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return invalid("invalid_type", te.Field, "must be %s", te.Type)
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		f = strings.Trim(f, `"`)
		return invalid("unknown_field", f, "unknown field %q", f)
	}
	return invalid("invalid_json", "", "%s", strings.TrimPrefix(msg, "json: "))
}

// Normalize fills defaults: schema version, layer, shares, control, status,
// unit.
func (s *Spec) Normalize() {
	if s.SchemaVersion == 0 {
		s.SchemaVersion = SpecVersion
	}
	if s.Layer == "" {
		s.Layer = "default"
	}
	if s.LayerShare == 0 {
		s.LayerShare = 1
	}
	if s.Traffic == 0 && s.Ramp == nil {
		s.Traffic = 1
	}
	if s.Ramp != nil && len(s.Ramp.Steps) > 0 && s.Ramp.Step < len(s.Ramp.Steps) && s.Ramp.Step >= 0 {
		s.Traffic = s.Ramp.Steps[s.Ramp.Step]
	}
	if s.Control == "" && len(s.Arms) > 0 {
		s.Control = s.Arms[0].Name
	}
	if s.Status == "" {
		s.Status = StatusDraft
	}
	if s.Unit == "" {
		s.Unit = UnitUser
	}
	if s.Phase == 0 {
		s.Phase = 1
	}
	if s.Kind == "" {
		s.Kind = KindFixed
	}
	if s.Kind == KindBandit && s.Bandit == nil {
		s.Bandit = &Bandit{}
	}
	if s.Bandit != nil {
		s.Bandit.normalize()
	}
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

// Validate checks a normalized spec and returns the first problem as a
// *ValidationError.
func (s *Spec) Validate() error {
	if s.SchemaVersion != SpecVersion {
		return invalid("unsupported_version", "schema_version", "schema_version %d is not supported (want %d)", s.SchemaVersion, SpecVersion)
	}
	if s.ID != "" && !nameRE.MatchString(s.ID) {
		return invalid("invalid_value", "id", "id must match %s", nameRE)
	}
	if strings.TrimSpace(s.Name) == "" {
		return invalid("missing_field", "name", "name is required")
	}
	if strings.TrimSpace(s.Owner) == "" {
		return invalid("missing_field", "owner", "owner is required")
	}
	if !nameRE.MatchString(s.Layer) {
		return invalid("invalid_value", "layer", "layer must match %s", nameRE)
	}
	if s.Salt != "" && strings.Contains(s.Salt, ":") {
		return invalid("invalid_value", "salt", "salt must not contain ':'")
	}
	if !inUnit(s.LayerShare) {
		return invalid("out_of_range", "layer_share", "layer_share must be in (0, 1]")
	}
	if s.Buckets != nil && (s.Buckets.Start < 0 || s.Buckets.End > Buckets || s.Buckets.Start >= s.Buckets.End) {
		return invalid("out_of_range", "buckets", "buckets must be a non-empty range within [0, %d)", Buckets)
	}
	if !(s.Traffic >= 0 && s.Traffic <= 1) || (s.Traffic == 0 && s.Ramp == nil) {
		return invalid("out_of_range", "traffic", "traffic must be in (0, 1]")
	}
	switch s.Unit {
	case UnitUser, UnitTenant, UnitRequest:
	default:
		return invalid("invalid_value", "unit", "unit must be user, tenant or request")
	}
	if err := s.Targeting.validate(); err != nil {
		return err
	}
	if err := validateArms(s.Arms, s.Control, s.Kind == KindHoldout); err != nil {
		return err
	}
	if _, ok := Metrics[s.PrimaryMetric]; !ok {
		return invalid("unknown_metric", "primary_metric", "primary_metric %q is not one of the analysed metrics", s.PrimaryMetric)
	}
	if err := s.LatencyBudgetsMS.validate(); err != nil {
		return err
	}
	for i, g := range s.Guardrails {
		f := fmt.Sprintf("guardrails[%d]", i)
		if _, ok := Metrics[g.Metric]; !ok {
			return invalid("unknown_metric", f+".metric", "guardrail metric %q is not one of the analysed metrics", g.Metric)
		}
		if g.Max == nil && g.MaxIncrease == nil {
			return invalid("missing_field", f+".max", "a guardrail needs max or max_increase")
		}
		if g.MinUnits < 0 {
			return invalid("out_of_range", f+".min_units", "min_units must be >= 0")
		}
	}
	if s.MinSample < 0 {
		return invalid("out_of_range", "min_sample", "min_sample must be >= 0")
	}
	switch s.Status {
	case StatusDraft, StatusRunning, StatusPaused, StatusStopped:
	default:
		return invalid("invalid_value", "status", "status must be draft, running, paused or stopped")
	}
	switch s.Kind {
	case KindFixed:
		if s.Bandit != nil {
			return invalid("invalid_value", "bandit", "bandit settings need kind bandit")
		}
		if s.Shadow != nil {
			return invalid("invalid_value", "shadow", "shadow settings need kind shadow")
		}
	case KindShadow:
		if err := s.validateShadow(); err != nil {
			return err
		}
	case KindHoldout:
		if err := s.validateHoldout(); err != nil {
			return err
		}
	case KindBandit:
		if s.Ramp != nil {
			return invalid("invalid_value", "ramp", "a bandit has no ramp: its weights move by themselves")
		}
		if _, _, ok := banditMetric(s.PrimaryMetric); !ok {
			return invalid("unknown_metric", "primary_metric", "a bandit needs a per-request primary metric, not %q", s.PrimaryMetric)
		}
		if err := s.Bandit.validate(len(s.Arms)); err != nil {
			return err
		}
	default:
		return invalid("invalid_value", "kind", "kind must be fixed, bandit, shadow or holdout")
	}
	if s.Ramp != nil {
		return s.Ramp.validate()
	}
	return nil
}

func inUnit(f float64) bool { return f > 0 && f <= 1 }

func validateArms(arms []Arm, control string, one bool) error {
	if len(arms) < 2 && !(one && len(arms) == 1) {
		return invalid("too_few_arms", "arms", "an experiment needs at least two arms")
	}
	seen := map[string]bool{}
	var total float64
	for i, a := range arms {
		f := fmt.Sprintf("arms[%d]", i)
		if !nameRE.MatchString(a.Name) {
			return invalid("invalid_value", f+".name", "arm name must match %s", nameRE)
		}
		if seen[a.Name] {
			return invalid("duplicate_arm", f+".name", "arm %q appears twice", a.Name)
		}
		seen[a.Name] = true
		if !(a.Weight > 0) || math.IsInf(a.Weight, 0) {
			return invalid("out_of_range", f+".weight", "weight must be > 0")
		}
		total += a.Weight
		if e := a.Overrides.Epsilon; e != nil && !(*e >= 0 && *e <= 1) {
			return invalid("out_of_range", f+".overrides.epsilon", "epsilon must be in [0, 1]")
		}
		for tier, th := range a.Overrides.Thresholds {
			switch tier {
			case "draft", "standard", "premium":
			default:
				return invalid("invalid_value", f+".overrides.thresholds", "unknown tier %q", tier)
			}
			if !(th >= 0 && th <= 1) {
				return invalid("out_of_range", f+".overrides.thresholds."+tier, "threshold must be in [0, 1]")
			}
		}
	}
	if !seen[control] {
		return invalid("invalid_value", "control", "control %q is not an arm", control)
	}
	// Each arm needs at least one bucket of the experiment hash.
	for i, a := range arms {
		if a.Weight/total*Buckets < 1 {
			return invalid("out_of_range", fmt.Sprintf("arms[%d].weight", i), "weight too small: the arm would get no bucket")
		}
	}
	return nil
}

func (t Targeting) validate() error {
	for i, m := range t.Modes {
		if m != "generate" && m != "edit" {
			return invalid("invalid_value", fmt.Sprintf("targeting.modes[%d]", i), "mode must be generate or edit")
		}
	}
	for i, m := range t.Tiers {
		if m != "draft" && m != "standard" && m != "premium" {
			return invalid("invalid_value", fmt.Sprintf("targeting.tiers[%d]", i), "tier must be draft, standard or premium")
		}
	}
	for i, p := range t.Features {
		f := fmt.Sprintf("targeting.features[%d]", i)
		if _, ok := featureIndex[p.Feature]; !ok {
			return invalid("unknown_feature", f+".feature", "unknown feature %q", p.Feature)
		}
		if _, ok := opIndex[p.Op]; !ok {
			return invalid("invalid_value", f+".op", "op must be one of eq ne lt le gt ge")
		}
	}
	return nil
}

func (r *Ramp) validate() error {
	if len(r.Steps) == 0 {
		return invalid("missing_field", "ramp.steps", "a ramp needs steps")
	}
	prev := 0.0
	for i, st := range r.Steps {
		if !inUnit(st) || st <= prev {
			return invalid("out_of_range", fmt.Sprintf("ramp.steps[%d]", i), "steps must increase within (0, 1]")
		}
		prev = st
	}
	if r.Step < 0 || r.Step >= len(r.Steps) {
		return invalid("out_of_range", "ramp.step", "step must index steps")
	}
	if r.MinDuration < 0 {
		return invalid("out_of_range", "ramp.min_duration", "min_duration must be >= 0")
	}
	if r.MinUnits < 0 {
		return invalid("out_of_range", "ramp.min_units", "min_units must be >= 0")
	}
	return nil
}

// ArmSalt is the salt hashed with a unit id to pick the arm: the experiment's
// salt, with the phase appended from phase 2 on so a new phase re-randomizes.
func (s *Spec) ArmSalt() string {
	salt := s.Salt
	if salt == "" {
		salt = s.ID
	}
	if s.Phase > 1 {
		return fmt.Sprintf("%s.p%d", salt, s.Phase)
	}
	return salt
}

// Arm returns the arm with the given name.
func (s *Spec) Arm(name string) (Arm, bool) {
	for _, a := range s.Arms {
		if a.Name == name {
			return a, true
		}
	}
	return Arm{}, false
}

// Clone returns a deep copy.
func (s Spec) Clone() Spec {
	b, _ := json.Marshal(s)
	var c Spec
	_ = json.Unmarshal(b, &c)
	return c
}
