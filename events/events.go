// Package events is the shared vocabulary of routelab's data flow: the typed
// events that serve emits (route decisions, QA results, user signals), that
// the console emits (review scores) and that jobs and the control plane emit
// (audit records). Every event travels as JSON through Kafka, keyed by request
// id, and lands in one ClickHouse table per type (see ingest/).
package events

// SchemaVersion is the version every producer in this build writes. Ingest
// accepts versions it knows and dead-letters the rest.
const SchemaVersion = 1

// Kind names an event type; it is also the suffix of its Kafka topic.
type Kind string

const (
	KindDecision Kind = "decisions"
	KindQA       Kind = "qa"
	KindSignal   Kind = "signals"
	KindReview   Kind = "reviews"
	KindAudit    Kind = "audit"
)

// Topic names. The data topics carry events; the control-plane topics are
// compacted (last record per key wins) and are read to the end at start-up.
const (
	TopicDecisions   = "routelab.decisions"
	TopicQA          = "routelab.qa"
	TopicSignals     = "routelab.signals"
	TopicReviews     = "routelab.reviews"
	TopicAudit       = "routelab.audit"
	TopicDeadLetter  = "routelab.deadletter"
	TopicPolicies    = "routelab.policies"
	TopicExperiments = "routelab.experiments"
)

// Header is common to every event. EventID is unique per event (a retry of
// the same write keeps its id so ClickHouse can collapse duplicates); TS is
// Unix milliseconds.
type Header struct {
	EventID       string `json:"event_id"`
	SchemaVersion int    `json:"schema_version"`
	TS            int64  `json:"ts"`
	Tenant        string `json:"tenant"`
	RequestID     string `json:"request_id"`
}

// Candidate is one model the router scored for a request.
type Candidate struct {
	Model    string  `json:"model"`
	P        float64 `json:"p"`        // calibrated P(success)
	CostUSD  float64 `json:"cost_usd"` // expected cost of one image
	Eligible bool    `json:"eligible"`
	Reason   string  `json:"reason,omitempty"` // why ineligible
}

// Arm is one experiment assignment carried by a decision, with the inputs
// needed to re-derive it.
type Arm struct {
	Experiment string `json:"experiment"`
	Arm        string `json:"arm"`
	Layer      string `json:"layer"`
	Phase      int    `json:"phase"`
	Unit       string `json:"unit"`   // the unit id that was hashed
	Bucket     int    `json:"bucket"` // bucket in [0, buckets)
	// Propensity is the weight in force for this arm when the unit was
	// assigned (bandit experiments; 0: a fixed split, whose shares are in
	// its spec), so the analysis can weight by its inverse; Stratum is the
	// bandit's stratum key the weight belongs to.
	Propensity float64 `json:"propensity,omitempty"`
	Stratum    string  `json:"stratum,omitempty"`
}

// Attempt is one provider call made while serving a request.
type Attempt struct {
	Model     string  `json:"model"`
	Provider  string  `json:"provider"`
	Status    string  `json:"status"` // ok | error | qa_fail | timeout | rate_limited
	LatencyMS int64   `json:"latency_ms"`
	CostUSD   float64 `json:"cost_usd"`
	// CostSource: "usage" when the cost comes from the vendor's reported
	// token usage, "catalog" when from the catalog's price per image.
	CostSource string `json:"cost_source,omitempty"`
	Error      string `json:"error,omitempty"`
}

// Features are the request features the router saw, logged so that training,
// drift detection and off-policy evaluation can be re-run on logged data.
type Features struct {
	PromptLen   int      `json:"prompt_len"`
	RefCount    int      `json:"ref_count"`
	EditDepth   int      `json:"edit_depth"`
	Aspect      float64  `json:"aspect"`
	TextHeavy   bool     `json:"text_heavy"`
	Preserve    bool     `json:"preserve_subject"`
	Keywords    []string `json:"keywords,omitempty"` // keyword groups that matched
	MaxLatency  int64    `json:"max_latency_ms,omitempty"`
	MaxCostUSD  float64  `json:"max_cost_usd,omitempty"`
	HashedGrams []uint32 `json:"hashed_grams,omitempty"` // indices of hashed word n-grams
}

// Decision is emitted once per served request: what the router chose, why,
// with which propensity, and how serving it went.
type Decision struct {
	Header
	Unit          string      `json:"unit"` // experiment unit id (user, else tenant)
	Mode          string      `json:"mode"` // generate | edit
	Tier          string      `json:"tier"` // draft | standard | premium
	Prompt        string      `json:"prompt"`
	ParentID      string      `json:"parent_id,omitempty"`
	Model         string      `json:"model"` // model that produced the returned image
	Provider      string      `json:"provider"`
	PolicyVersion string      `json:"policy_version"`
	Rule          string      `json:"rule,omitempty"` // rule that decided, if any
	Propensity    float64     `json:"propensity"`     // P(chosen model | request, policy)
	Explored      bool        `json:"explored"`
	Reset         bool        `json:"reset"` // edit chain restarted from the cleanest prior image
	Candidates    []Candidate `json:"candidates,omitempty"`
	Features      Features    `json:"features"`
	Arms          []Arm       `json:"arms,omitempty"`
	Attempts      []Attempt   `json:"attempts,omitempty"`
	Escalated     bool        `json:"escalated"`
	Fallback      bool        `json:"fallback"`
	Status        string      `json:"status"` // ok | error
	ErrorCode     string      `json:"error_code,omitempty"`
	QAPass        bool        `json:"qa_pass"`
	LatencyMS     int64       `json:"latency_ms"`
	CostUSD       float64     `json:"cost_usd"`
	Images        int         `json:"images"`
	Sampled       bool        `json:"sampled"` // marked for human review
	// SampleRate is the probability the output was drawn for review with
	// (its stratum's rate, raised for failures); 1/SampleRate weighs its
	// review in unbiased estimates. 0 on outputs not sampled.
	SampleRate float64 `json:"sample_rate,omitempty"`
	BlobKey    string  `json:"blob_key,omitempty"` // content address of the sampled image
	// RefKeys are the content addresses of the reference images the model
	// was given (an edit's base image first), stored with a sampled output
	// so reviewers see what it was edited from.
	RefKeys []string `json:"ref_keys,omitempty"`
	// Shadow marks a shadow experiment's mirror of a live request
	// (LiveRequestID): served after the live response, never returned to
	// anyone. Analyses of live traffic leave these out.
	Shadow        bool   `json:"shadow,omitempty"`
	LiveRequestID string `json:"live_request_id,omitempty"`
}

// QACheck is one automated check on returned image bytes.
type QACheck struct {
	Name  string  `json:"name"` // format | size | aspect | blank | sharpness | drift
	Pass  bool    `json:"pass"`
	Value float64 `json:"value"`
}

// QAResult is emitted for every image attempt that QA inspected.
type QAResult struct {
	Header
	Model   string    `json:"model"`
	Attempt int       `json:"attempt"`
	Pass    bool      `json:"pass"`
	Score   float64   `json:"score"`
	Checks  []QACheck `json:"checks"`
	Reason  string    `json:"reason,omitempty"`
	// Shadow and LiveRequestID as on the shadow request's decision.
	Shadow        bool   `json:"shadow,omitempty"`
	LiveRequestID string `json:"live_request_id,omitempty"`
	// OCRText is what the legibility check read from the image (check
	// "text", whose value is the score); empty when the prompt asked for no
	// text.
	OCRText string `json:"ocr_text,omitempty"`
}

// Signal is a user signal reported by the product app through /v1/feedback.
type Signal struct {
	Header
	Signal  string  `json:"signal"` // thumbs_up | thumbs_down | download | regenerate | edit | report
	Value   float64 `json:"value"`
	Comment string  `json:"comment,omitempty"`
	User    string  `json:"user,omitempty"`
}

// DefaultFailSignals are the signals that mark a request a failure under
// the default label definition (jobs.DefaultLabels), however QA judged it:
// the user rejected the image.
var DefaultFailSignals = []string{"thumbs_down", "regenerate"}

// Score is one rubric answer given by a reviewer.
type Score struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
}

// Review is a reviewer's judgement: either rubric scores on one output
// (Kind "score") or a blind pairwise preference (Kind "pairwise", RequestID is
// the left output and OtherRequestID the right).
type Review struct {
	Header
	Kind           string  `json:"kind"` // score | pairwise
	Reviewer       string  `json:"reviewer"`
	Rubric         string  `json:"rubric,omitempty"`
	Model          string  `json:"model,omitempty"`
	Arm            string  `json:"arm,omitempty"`
	Scores         []Score `json:"scores,omitempty"`
	Overlap        bool    `json:"overlap"` // an agreement item seen by several reviewers
	OtherRequestID string  `json:"other_request_id,omitempty"`
	OtherModel     string  `json:"other_model,omitempty"`
	Preference     string  `json:"preference,omitempty"` // left | right | tie
	Comment        string  `json:"comment,omitempty"`
}

// Audit records a control-plane change or a job's outcome: an experiment
// created or ramped, a policy pushed or rolled back, a drift breach, a job
// report. Body is the JSON document that changed.
type Audit struct {
	Header
	Action  string `json:"action"`  // e.g. experiment.start, policy.push, canary.rollback, jobs.drift
	Subject string `json:"subject"` // experiment id, policy version, job name
	Actor   string `json:"actor"`
	Body    string `json:"body"`
}
