package sim

// The hidden truth. Numbers are invented but shaped after the public
// write-ups quoted in the catalog: a typography specialist legible ~95% of
// the time on short phrases where generalists fail ~80%; a premium
// generalist strong on layout and long text; an editing model strong at
// subject-preserving edits and slowest to degrade over chains; a hero model
// best at photoreal shots; cheap models nearly as good as anything at
// abstract backgrounds and simple scenes. Edit quality falls off sharply
// after ~5-10 chained edits (depthHalf).

// Tasks.
const (
	TaskTextRender   = "text_render"         // short phrases on posters, signs, banners, logos
	TaskTextLayout   = "text_layout"         // menus, infographics, long copy
	TaskPhotoreal    = "photoreal_hero"      // product and hero shots
	TaskSubjectEdit  = "subject_edit"        // edits that must keep a subject, with references
	TaskStyleEdit    = "style_edit"          // restyle / recolour / add or remove an object
	TaskAbstract     = "abstract_background" // gradients, patterns, wallpapers
	TaskAvatar       = "avatar"              // portraits, avatars, icons
	TaskIllustration = "illustration"        // general scenes, animals, art styles
)

var taskList = []string{TaskTextRender, TaskTextLayout, TaskPhotoreal, TaskSubjectEdit, TaskStyleEdit, TaskAbstract, TaskAvatar, TaskIllustration}

type truthSpec struct {
	p           map[string]float64
	half, scale float64
}

var truths = map[string]truthSpec{
	"sim-lite": {p: map[string]float64{
		TaskTextRender: 0.18, TaskTextLayout: 0.08, TaskPhotoreal: 0.55, TaskSubjectEdit: 0.35,
		TaskStyleEdit: 0.80, TaskAbstract: 0.93, TaskAvatar: 0.80, TaskIllustration: 0.74,
	}, half: 5.5, scale: 0.8},
	"sim-fast": {p: map[string]float64{
		TaskTextRender: 0.22, TaskTextLayout: 0.15, TaskPhotoreal: 0.74, TaskSubjectEdit: 0.50,
		TaskStyleEdit: 0.87, TaskAbstract: 0.95, TaskAvatar: 0.91, TaskIllustration: 0.86,
	}, half: 6.5, scale: 0.8},
	"sim-premium": {p: map[string]float64{
		TaskTextRender: 0.86, TaskTextLayout: 0.89, TaskPhotoreal: 0.87, TaskSubjectEdit: 0.80,
		TaskStyleEdit: 0.91, TaskAbstract: 0.95, TaskAvatar: 0.92, TaskIllustration: 0.91,
	}, half: 7, scale: 0.8},
	"sim-editor": {p: map[string]float64{
		TaskTextRender: 0.40, TaskTextLayout: 0.30, TaskPhotoreal: 0.72, TaskSubjectEdit: 0.94,
		TaskStyleEdit: 0.92, TaskAbstract: 0.90, TaskAvatar: 0.88, TaskIllustration: 0.82,
	}, half: 9, scale: 0.9},
	"sim-typo": {p: map[string]float64{
		TaskTextRender: 0.95, TaskTextLayout: 0.79, TaskPhotoreal: 0.60, TaskSubjectEdit: 0.40,
		TaskStyleEdit: 0.70, TaskAbstract: 0.86, TaskAvatar: 0.76, TaskIllustration: 0.80,
	}, half: 6, scale: 0.8},
	// An experimental cheap model: mediocre images, and its safety filter
	// refuses benign prompts often (refusal_rate in the catalog). Pin-only:
	// the canary example in datasets/experiments ramps it and rolls back.
	"sim-flaky": {p: map[string]float64{
		TaskTextRender: 0.15, TaskTextLayout: 0.10, TaskPhotoreal: 0.50, TaskSubjectEdit: 0.30,
		TaskStyleEdit: 0.60, TaskAbstract: 0.85, TaskAvatar: 0.65, TaskIllustration: 0.60,
	}, half: 5, scale: 0.8},
	"sim-hero": {p: map[string]float64{
		TaskTextRender: 0.45, TaskTextLayout: 0.32, TaskPhotoreal: 0.95, TaskSubjectEdit: 0.0,
		TaskStyleEdit: 0.0, TaskAbstract: 0.96, TaskAvatar: 0.93, TaskIllustration: 0.90,
	}, half: 7, scale: 0.8},
}
