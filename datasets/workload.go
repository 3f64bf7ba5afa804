package datasets

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"

	"github.com/routelab/routelab/providers/sim"
	"github.com/routelab/routelab/router"
)

// WorkItem is one line of a workload file: the request the router sees and
// the hidden task the simulated world judges it as.
type WorkItem struct {
	Request router.Request `json:"request"`
	Task    string         `json:"task"`
	Source  string         `json:"source"` // template | parti
}

// scenario is one kind of traffic with its share of requests.
type scenario struct {
	name   string
	weight float64
	gen    func(g *gen) // appends one or more items
}

type gen struct {
	r     *rand.Rand
	seed  uint64
	items []WorkItem
	n     int
	parti []PartiPrompt
}

// Generate makes a workload of n requests, reproducible from seed. The mix:
// PartiPrompts generations (a third), text-heavy posters, banners, signs,
// menus and infographics, photoreal hero shots, abstract backgrounds,
// avatars, illustrations, subject-preserving edits with 1-4 references and
// style edits, both as edit chains up to 14 deep; tiers, sizes, latency and
// cost budgets vary.
func Generate(seed uint64, n int) ([]WorkItem, error) {
	parti, err := PartiPrompts()
	if err != nil {
		return nil, err
	}
	g := &gen{r: rand.New(rand.NewPCG(seed, 0x726f7574656c6162)), seed: seed, n: n, parti: parti}
	scen := []scenario{
		{"parti", 0.33, (*gen).partiItem},
		{"text_render", 0.10, (*gen).textRender},
		{"text_layout", 0.06, (*gen).textLayout},
		{"photoreal", 0.09, (*gen).photoreal},
		{"abstract", 0.07, (*gen).abstract},
		{"avatar", 0.07, (*gen).avatar},
		{"illustration", 0.04, (*gen).illustration},
		{"subject_edit", 0.035, (*gen).subjectChain},
		{"style_edit", 0.025, (*gen).styleChain},
	}
	total := 0.0
	for _, s := range scen {
		total += s.weight
	}
	for len(g.items) < n {
		u := g.r.Float64() * total
		for _, s := range scen {
			if u < s.weight {
				s.gen(g)
				break
			}
			u -= s.weight
		}
	}
	return g.items[:n], nil
}

func (g *gen) pick(xs []string) string { return xs[g.r.IntN(len(xs))] }

func (g *gen) chance(p float64) bool { return g.r.Float64() < p }

func (g *gen) id() string {
	return "w" + strconv.FormatUint(g.seed, 10) + "-" + strconv.Itoa(len(g.items))
}

// add finishes a request with tier, size and budgets and appends it.
func (g *gen) add(req router.Request, task, source string) {
	req.ID = g.id()
	req.Tenant = g.pick([]string{"acme", "globex", "initech", "umbrella"})
	if req.Unit == "" {
		req.Unit = "user-" + strconv.Itoa(g.r.IntN(5000))
	}
	switch u := g.r.Float64(); {
	case u < 0.25:
		req.Tier = router.TierDraft
	case u < 0.80:
		req.Tier = router.TierStandard
	default:
		req.Tier = router.TierPremium
	}
	if req.Width == 0 {
		switch u := g.r.Float64(); {
		case u < 0.70:
			req.Width, req.Height = 1024, 1024
		case u < 0.85:
			req.Width, req.Height = 1536, 1024
		case u < 0.98:
			req.Width, req.Height = 1024, 1536
		default:
			if req.Mode == router.ModeGenerate {
				req.Width, req.Height = 2048, 2048
			} else {
				req.Width, req.Height = 1024, 1024
			}
		}
	}
	if g.chance(0.15) {
		req.Constraints.MaxLatencyMS = []int64{5000, 5000, 10000, 10000, 20000}[g.r.IntN(5)]
	}
	if g.chance(0.08) {
		req.Constraints.MaxCostUSD = []float64{0.01, 0.05, 0.1}[g.r.IntN(3)]
	}
	g.items = append(g.items, WorkItem{Request: req, Task: task, Source: source})
}

func (g *gen) partiItem() {
	p := g.parti[g.r.IntN(len(g.parti))]
	req := router.Request{Mode: router.ModeGenerate, Prompt: p.Prompt}
	if strings.HasPrefix(p.Task, "text_") && g.chance(0.5) {
		req.Constraints.TextHeavy = true
	}
	g.add(req, p.Task, "parti")
}

func (g *gen) fill(tmpl string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(tmpl, '{')
		if i < 0 {
			b.WriteString(tmpl)
			return b.String()
		}
		j := strings.IndexByte(tmpl[i:], '}')
		b.WriteString(tmpl[:i])
		b.WriteString(g.pick(vocab[tmpl[i+1:i+j]]))
		tmpl = tmpl[i+j+1:]
	}
}

func (g *gen) textRender() {
	req := router.Request{Mode: router.ModeGenerate, Prompt: g.fill(g.pick([]string{
		`A {style} poster for a {event} with the headline "{phrase}"`,
		`A storefront sign that says "{phrase}" above a {shop}`,
		`A web banner reading "{phrase}" on a {color} background`,
		`Logo for a {shop} called "{phrase}", {style} lettering`,
		`A neon sign saying "{phrase}" in a {place}`,
		`A greeting card with the words "{phrase}" in {style} lettering`,
		`A t-shirt print with the slogan "{phrase}"`,
		`A coffee cup label that reads "{phrase}", {style}`,
		`{phrase} written in chalk on a {place} blackboard`,
	}))}
	req.Constraints.TextHeavy = g.chance(0.5)
	g.add(req, "text_render", "template")
}

func (g *gen) textLayout() {
	req := router.Request{Mode: router.ModeGenerate, Prompt: g.fill(g.pick([]string{
		`A restaurant menu listing {dish}, {dish}, {dish} and {dish} with prices, {style} layout`,
		`An infographic titled "{long}" with three labelled steps and icons`,
		`A conference flyer: "{long}", with date, venue and a speaker list in two columns`,
		`A presentation slide with the title "{long}" and four bullet points`,
		`A brochure page explaining "{long}" with headings and a chart`,
		`A recipe card for {dish} with an ingredient list and numbered steps`,
		`A bus timetable poster with a table of departures for {place} lines`,
	}))}
	req.Constraints.TextHeavy = g.chance(0.5)
	g.add(req, "text_layout", "template")
}

func (g *gen) photoreal() {
	req := router.Request{Mode: router.ModeGenerate, Prompt: g.fill(g.pick([]string{
		`Photo of {product} on {surface}, studio lighting, 85mm, shallow depth of field`,
		`Hero shot of {product} with dramatic rim light on {surface}`,
		`Photorealistic {scene} at golden hour, shot on a DSLR`,
		`A realistic photograph of {subject} in {scene}`,
		`Product packshot of {product}, white background, soft shadows`,
		`Cinematic 35mm still of {subject} walking through {scene}`,
		`{product} floating above {surface}, commercial photography`,
	}))}
	g.add(req, "photoreal_hero", "template")
}

func (g *gen) abstract() {
	req := router.Request{Mode: router.ModeGenerate, Prompt: g.fill(g.pick([]string{
		`Abstract {color} gradient background with {shapes}`,
		`Seamless {shapes} pattern wallpaper in {color} tones`,
		`Soft geometric texture for a website hero background, {color}`,
		`Minimal abstract shapes, {color} and {color}, flat`,
		`Blurred {color} bokeh lights background`,
		`Marbled {color} fluid art texture`,
	}))}
	g.add(req, "abstract_background", "template")
}

func (g *gen) avatar() {
	req := router.Request{Mode: router.ModeGenerate, Prompt: g.fill(g.pick([]string{
		`Avatar of a {person} in {style} style`,
		`Professional headshot of a {person}, neutral background`,
		`Cute {animal} profile picture icon, {style}`,
		`Portrait of a {person} smiling, {style}`,
		`Game character portrait: {person} with {outfit}`,
	}))}
	if req.Width == 0 {
		req.Width, req.Height = 1024, 1024
	}
	g.add(req, "avatar", "template")
}

func (g *gen) illustration() {
	req := router.Request{Mode: router.ModeGenerate, Prompt: g.fill(g.pick([]string{
		`{style} illustration of a {animal} {doing} in a {place}`,
		`A watercolor painting of {scene}`,
		`A children's book drawing of a {animal} and a {animal} {doing}`,
		`An isometric 3d render of a tiny {place}`,
	}))}
	g.add(req, "illustration", "template")
}

// chain appends an edit chain: the first edit at depth 1, each next one
// editing the previous output.
func (g *gen) chain(task string, refs int, preserve bool, prompt func() string) {
	length := 1
	for length < 14 && g.chance(0.78) {
		length++
	}
	unit := "user-" + strconv.Itoa(g.r.IntN(5000))
	parent := ""
	for d := 1; d <= length && len(g.items) < g.n; d++ {
		req := router.Request{Mode: router.ModeEdit, Prompt: prompt(), RefCount: refs, EditDepth: d, Parent: parent, Unit: unit}
		req.Constraints.PreserveSubject = preserve
		g.add(req, task, "template")
		parent = g.items[len(g.items)-1].Request.ID
	}
}

func (g *gen) subjectChain() {
	refs := 1 + g.r.IntN(4) // the image being edited plus up to 3 references
	preserve := g.chance(0.7)
	g.chain("subject_edit", refs, preserve, func() string {
		return g.fill(g.pick([]string{
			`Put the {subject} from the reference into {scene}, keep the face unchanged`,
			`Replace the background with {scene} but keep the same {subject}`,
			`Change the outfit to {outfit}, preserve identity`,
			`Place this {product} on {surface}, same label and shape`,
			`Show the same {subject} {doing}, consistent character`,
			`Swap the {object} for a {object}, keep everything else`,
		}))
	})
}

func (g *gen) styleChain() {
	g.chain("style_edit", 1, false, func() string {
		return g.fill(g.pick([]string{
			`Make it look like a {style}`,
			`Turn the sky {color}`,
			`Remove the {object}`,
			`Add a {object} on the table`,
			`Recolor the car {color}`,
			`Make it night time`,
			`Change the season to winter`,
		}))
	})
}

var vocab = map[string][]string{
	"style":   {"retro", "minimalist", "art deco", "watercolor", "bold modern", "hand-drawn", "vintage", "flat vector", "anime", "oil painting", "pixel art", "cartoon"},
	"event":   {"jazz festival", "farmers market", "tech meetup", "charity run", "film night", "book fair", "yoga retreat"},
	"phrase":  {"OPEN LATE", "Grand Opening", "SALE 50% OFF", "Hello World", "Fresh Coffee", "Happy Birthday Mia", "No Parking", "Summer Vibes", "Join Us", "Best Tacos", "Stay Curious", "Welcome Home", "Night Market", "GAME OVER"},
	"long":    {"Five habits of highly productive remote engineering teams", "How our city recycles plastic bottles into park benches", "Quarterly results and the roadmap for next year", "A beginner's guide to brewing pour over coffee at home", "Ten rules for safe cycling in heavy city traffic"},
	"shop":    {"bakery", "bike shop", "bookstore", "ramen bar", "flower shop", "barber", "record store"},
	"color":   {"teal", "orange", "purple", "pastel pink", "deep blue", "emerald", "gold", "monochrome"},
	"place":   {"rainy alley", "cozy cafe", "subway station", "desert town", "mountain village", "neon city street", "library", "kitchen"},
	"dish":    {"ramen", "margherita pizza", "caesar salad", "pad thai", "tiramisu", "fish tacos", "lentil soup", "pancakes"},
	"product": {"a perfume bottle", "a pair of running sneakers", "a smart watch", "wireless headphones", "a ceramic mug", "a leather handbag", "a bottle of olive oil"},
	"surface": {"wet black slate", "a marble countertop", "sand dunes", "a mossy rock", "brushed steel", "a wooden table"},
	"scene":   {"a misty forest", "a rooftop at sunset", "a busy street market", "a snowy mountain cabin", "a tropical beach", "a quiet library"},
	"subject": {"woman in a red coat", "old fisherman", "golden retriever", "young skateboarder", "chef", "cyclist"},
	"shapes":  {"flowing waves", "overlapping circles", "low-poly triangles", "soft blobs", "hexagons", "stripes"},
	"person":  {"young woman with curly hair", "bearded man", "elderly woman", "teenage gamer", "astronaut", "doctor"},
	"animal":  {"fox", "panda", "owl", "corgi", "octopus", "tiger", "hedgehog", "whale"},
	"outfit":  {"a denim jacket", "a tuxedo", "a space suit", "a medieval armor", "a yellow raincoat"},
	"doing":   {"reading a book", "riding a bicycle", "baking bread", "playing chess", "flying a kite"},
	"object":  {"lamp", "vase of tulips", "laptop", "cat", "bicycle", "street sign", "coffee cup"},
}

// WriteWorkload writes items as JSONL.
func WriteWorkload(w io.Writer, items []WorkItem) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	enc := json.NewEncoder(bw)
	for i := range items {
		if err := enc.Encode(&items[i]); err != nil {
			return fmt.Errorf("write workload line %d: %w", i+1, err)
		}
	}
	return bw.Flush()
}

// ReadWorkload reads a JSONL workload; a bad line is an error naming it.
func ReadWorkload(r io.Reader) ([]WorkItem, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<22)
	var out []WorkItem
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(strings.TrimSpace(string(b))) == 0 {
			continue
		}
		var it WorkItem
		if err := json.Unmarshal(b, &it); err != nil {
			return nil, fmt.Errorf("workload line %d: %w", line, err)
		}
		if it.Request.ID == "" || (it.Request.Mode != router.ModeGenerate && it.Request.Mode != router.ModeEdit) {
			return nil, fmt.Errorf("workload line %d: request needs an id and mode generate|edit", line)
		}
		out = append(out, it)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read workload: %w", err)
	}
	return out, nil
}

// ReferencePNG is the reference image a workload's edits bring (the lab
// and loadgen send the same one): a 128x128 render of a portrait by the
// simulator's renderer, with the detail and texture of a small photo. (It
// was a smooth 64x64 gradient, on which automated QA's sharpness and pHash
// drift checks judge edits by noise: a good edit's one added shape moved a
// gradient's hash past the drift bound.) Read only.
var ReferencePNG = sync.OnceValue(func() []byte {
	return sim.Render("a portrait photo of a smiling woman in a red scarf, studio light", 128, 128, 1, 1)
})
