package server_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/routelab/routelab/providers/sim"
)

// vendorFake is one httptest server standing for the six vendor APIs the
// adapters call, each under its own path prefix, answering as the vendor's
// documentation says (the sources are those of datasets/catalogs/
// vendors.json): the vendor's auth header, its request shape, its native
// sizes (an image at the size the vendor would make, not the size asked
// for), its success and error bodies. A script says how the next calls to
// a vendor go wrong; without one every call succeeds.
type vendorFake struct {
	*httptest.Server
	mu     sync.Mutex
	script map[string][]act // by vendor, one act per call, the last repeated
	calls  []vendorCall
	bfl    map[string]*bflTask
	nextID int
}

// Vendor path prefixes (also the registry's provider names, but gemini's
// prefix serves imagen too, as the Gemini API does).
const (
	vOpenAI   = "openai"
	vGemini   = "gemini"
	vIdeogram = "ideogram"
	vArk      = "byteplus"
	vBFL      = "bfl"
)

// Keys the fake accepts, one per vendor.
var fakeKeys = map[string]string{vOpenAI: "sk-contract", vGemini: "gm-contract", vIdeogram: "ideo-contract", vArk: "ark-contract", vBFL: "bfl-contract"}

// act is how the vendor answers one call.
type act struct {
	status     int    // answer this HTTP status with the vendor's error body (429, 500, 503)
	retryAfter string // Retry-After of a 429 (seconds)
	hang       bool   // answer nothing until the caller gives up
	policy     bool   // refuse under the vendor's content policy, in its own shape
	usage      string // OpenAI GPT image models: "detailed" (gpt-image-2's), "plain", "none"
	pending    int    // BFL: polls answered Pending before the task is Ready
	taskStatus string // BFL: the task's final status instead of Ready ("Error", "Request Moderated")
}

// vendorCall is what one call asked the vendor for.
type vendorCall struct {
	Vendor, Model  string
	N              int
	Size, Aspect   string // as sent: "WxH", or the aspect ratio field
	Width, Height  int    // what the fake answered with
	MagicPrompt    string // Ideogram
	ResponseFormat string // OpenAI dall-e
}

type bflTask struct {
	w, h    int
	pending int
	final   string
	polls   int
}

func newVendorFake(t *testing.T) *vendorFake {
	t.Helper()
	f := &vendorFake{script: map[string][]act{}, bfl: map[string]*bflTask{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /openai/v1/images/generations", f.openai)
	mux.HandleFunc("POST /gemini/v1beta/models/{call}", f.gemini)
	mux.HandleFunc("POST /ideogram/v1/ideogram-v3/generate", f.ideogram)
	mux.HandleFunc("POST /ark/api/v3/images/generations", f.ark)
	mux.HandleFunc("POST /bfl/v1/{model}", f.bflSubmit)
	mux.HandleFunc("GET /bfl/v1/get_result", f.bflPoll)
	mux.HandleFunc("GET /files/{w}/{h}", f.file)
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

// on scripts the next calls to vendor.
func (f *vendorFake) on(vendor string, acts ...act) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.script[vendor] = acts
}

// take is the act for this call to vendor, and records the call.
func (f *vendorFake) take(c vendorCall) act {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
	s := f.script[c.Vendor]
	if len(s) == 0 {
		return act{}
	}
	a := s[0]
	if len(s) > 1 {
		f.script[c.Vendor] = s[1:]
	}
	return a
}

// answered records the size the last call of vendor was answered at.
func (f *vendorFake) answered(vendor string, w, h int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.calls) - 1; i >= 0; i-- {
		if f.calls[i].Vendor == vendor {
			f.calls[i].Width, f.calls[i].Height = w, h
			return
		}
	}
}

// callCount is how many calls all vendors have had.
func (f *vendorFake) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// callsTo returns the calls made to vendor.
func (f *vendorFake) callsTo(vendor string) []vendorCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []vendorCall
	for _, c := range f.calls {
		if c.Vendor == vendor {
			out = append(out, c)
		}
	}
	return out
}

// hang waits until the caller gives up.
func hang(r *http.Request) { <-r.Context().Done() }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// vendorImages caches the fakes' PNGs by size: the simulator's crisp
// render of one prompt, which passes QA as a good vendor image does.
var vendorImages sync.Map // [2]int -> []byte

func vendorPNG(w, h int) []byte {
	if b, ok := vendorImages.Load([2]int{w, h}); ok {
		return b.([]byte)
	}
	b := sim.Render("a wide mountain landscape at dawn, contract test", w, h, 0.95, 7)
	vendorImages.Store([2]int{w, h}, b)
	return b
}

func vendorB64(w, h int) string { return base64.StdEncoding.EncodeToString(vendorPNG(w, h)) }

// file serves an image by URL (Ideogram's and BFL's results).
func (f *vendorFake) file(w http.ResponseWriter, r *http.Request) {
	iw, _ := strconv.Atoi(r.PathValue("w"))
	ih, _ := strconv.Atoi(r.PathValue("h"))
	if iw <= 0 || ih <= 0 {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	_, _ = w.Write(vendorPNG(iw, ih))
}

func (f *vendorFake) fileURL(w, h int) string { return fmt.Sprintf("%s/files/%d/%d", f.URL, w, h) }

func parseWxH(s string) (int, int, bool) {
	ws, hs, ok := strings.Cut(s, "x")
	w, err1 := strconv.Atoi(ws)
	h, err2 := strconv.Atoi(hs)
	return w, h, ok && err1 == nil && err2 == nil && w > 0 && h > 0
}

// openai is the Images API (https://platform.openai.com/docs/api-reference/images):
// Bearer key; the GPT image models 1, 1.5 and 1-mini make 1024x1024,
// 1536x1024 and 1024x1536 and refuse other sizes, gpt-image-2 any size in
// multiples of 16 up to 3840 px; dall-e-3 makes one image a call (n=1)
// at 1024x1024, 1792x1024 or 1024x1792 and answers b64_json only when
// asked. GPT image responses carry token usage, gpt-image-2's with
// details.
func (f *vendorFake) openai(w http.ResponseWriter, r *http.Request) {
	oaErr := func(status int, msg, typ string, param, code any) {
		writeJSON(w, status, map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": param, "code": code}})
	}
	if r.Header.Get("Authorization") != "Bearer "+fakeKeys[vOpenAI] {
		oaErr(401, "Incorrect API key provided.", "invalid_request_error", nil, "invalid_api_key")
		return
	}
	var body struct {
		Model, Prompt, Size, Quality, ResponseFormat string
		N                                            int
	}
	var raw map[string]any
	b, _ := io.ReadAll(r.Body)
	if json.Unmarshal(b, &raw) != nil {
		oaErr(400, "We could not parse the JSON body of your request.", "invalid_request_error", nil, nil)
		return
	}
	_ = json.Unmarshal(b, &body)
	if v, ok := raw["response_format"].(string); ok {
		body.ResponseFormat = v
	}
	body.N = max(body.N, 1)
	a := f.take(vendorCall{Vendor: vOpenAI, Model: body.Model, N: body.N, Size: body.Size, ResponseFormat: body.ResponseFormat})
	switch {
	case a.hang:
		hang(r)
		return
	case a.status == 429:
		w.Header().Set("Retry-After", a.retryAfter)
		oaErr(429, "Rate limit reached for images per minute (IPM): Limit 5, Used 5, Requested 1.", "requests", nil, "rate_limit_exceeded")
		return
	case a.status != 0:
		oaErr(a.status, "The server had an error while processing your request. Sorry about that!", "server_error", nil, nil)
		return
	case a.policy:
		oaErr(400, "Your request was rejected by the safety system. If you believe this is an error, contact us at help.openai.com.", "image_generation_user_error", nil, "moderation_blocked")
		return
	}
	iw, ih, ok := parseWxH(body.Size)
	if body.Size == "" || body.Size == "auto" {
		iw, ih, ok = 1024, 1024, true
	}
	switch body.Model {
	case "dall-e-3":
		if body.N != 1 {
			oaErr(400, "You must provide n=1 for this model.", "invalid_request_error", nil, nil)
			return
		}
		ok = ok && (body.Size == "1024x1024" || body.Size == "1792x1024" || body.Size == "1024x1792")
	case "gpt-image-2":
		ok = ok && iw%16 == 0 && ih%16 == 0 && max(iw, ih) <= 3840
	default:
		ok = ok && (iw == ih && iw == 1024 || iw == 1536 && ih == 1024 || iw == 1024 && ih == 1536)
	}
	if !ok {
		oaErr(400, fmt.Sprintf("Invalid value: '%s'. Supported values are: '1024x1024', '1024x1536', '1536x1024', and 'auto'.", body.Size), "invalid_request_error", "size", "invalid_value")
		return
	}
	data := make([]map[string]any, body.N)
	for i := range data {
		if body.Model == "dall-e-3" && body.ResponseFormat != "b64_json" {
			data[i] = map[string]any{"url": f.fileURL(iw, ih), "revised_prompt": body.Prompt}
		} else {
			data[i] = map[string]any{"b64_json": vendorB64(iw, ih)}
		}
	}
	resp := map[string]any{"created": 1765000000, "data": data}
	if strings.HasPrefix(body.Model, "gpt-image") {
		shape := a.usage
		if shape == "" && body.Model == "gpt-image-2" {
			shape = "detailed"
		} else if shape == "" {
			shape = "plain"
		}
		out := int64(1568 * body.N)
		switch shape {
		case "detailed":
			resp["usage"] = map[string]any{"input_tokens": 50, "output_tokens": out + 200, "total_tokens": out + 250,
				"input_tokens_details":  map[string]any{"text_tokens": 50, "image_tokens": 0},
				"output_tokens_details": map[string]any{"image_tokens": out, "text_tokens": 200}}
		case "plain":
			resp["usage"] = map[string]any{"input_tokens": 50, "output_tokens": out, "total_tokens": out + 50,
				"input_tokens_details": map[string]any{"text_tokens": 50, "image_tokens": 0}}
		}
	}
	f.answered(vOpenAI, iw, ih)
	writeJSON(w, 200, resp)
}

// Native sizes by aspect ratio (vendors.json's native_sizes_source).
var (
	gemini25Sizes = map[string]string{"1:1": "1024x1024", "2:3": "832x1248", "3:2": "1248x832", "3:4": "864x1184", "4:3": "1184x864",
		"4:5": "896x1152", "5:4": "1152x896", "9:16": "768x1344", "16:9": "1344x768", "21:9": "1536x672"}
	gemini3Sizes = map[string]string{"1:1": "1024x1024", "3:2": "1232x816", "2:3": "816x1232", "4:3": "1200x896", "3:4": "896x1200",
		"5:4": "1136x896", "4:5": "896x1136", "16:9": "1376x768", "9:16": "768x1376", "21:9": "1584x672"}
	imagenSizes   = map[string]string{"1:1": "1024x1024", "3:4": "896x1280", "4:3": "1280x896", "9:16": "768x1408", "16:9": "1408x768"}
	ideogramSizes = map[string]string{"1x1": "1024x1024", "3x2": "1248x832", "2x3": "832x1248", "16x9": "1312x736", "9x16": "736x1312",
		"4x3": "1152x864", "3x4": "864x1152"}
)

// gemini is the Gemini API (https://ai.google.dev/gemini-api/docs/image-generation,
// .../imagen): x-goog-api-key; generateContent answers one image as an
// inlineData part at the model's fixed size for imageConfig.aspectRatio;
// predict (Imagen) answers sampleCount images and refuses aspects it lacks
// (3:2) with INVALID_ARGUMENT. Errors in Google's shape, a 429 with a
// RetryInfo delay; a blocked prompt comes back as promptFeedback, an
// Imagen image its safety filter took as a prediction without bytes.
func (f *vendorFake) gemini(w http.ResponseWriter, r *http.Request) {
	gErr := func(code int, status, msg string, details ...map[string]any) {
		e := map[string]any{"code": code, "message": msg, "status": status}
		if len(details) > 0 {
			e["details"] = details
		}
		writeJSON(w, code, map[string]any{"error": e})
	}
	if r.Header.Get("x-goog-api-key") != fakeKeys[vGemini] {
		gErr(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.",
			map[string]any{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"})
		return
	}
	model, method, _ := strings.Cut(r.PathValue("call"), ":")
	var body struct {
		GenerationConfig struct {
			ImageConfig struct{ AspectRatio string } `json:"imageConfig"`
		} `json:"generationConfig"`
		Parameters struct {
			SampleCount int    `json:"sampleCount"`
			AspectRatio string `json:"aspectRatio"`
		} `json:"parameters"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		gErr(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
		return
	}
	aspect := body.GenerationConfig.ImageConfig.AspectRatio
	if method == "predict" {
		aspect = body.Parameters.AspectRatio
	}
	aspect = cmpOr(aspect, "1:1")
	n := max(body.Parameters.SampleCount, 1)
	a := f.take(vendorCall{Vendor: vGemini, Model: model, N: n, Aspect: aspect})
	switch {
	case a.hang:
		hang(r)
		return
	case a.status == 429:
		gErr(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).",
			map[string]any{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": a.retryAfter + "s"})
		return
	case a.status != 0:
		gErr(a.status, "UNAVAILABLE", "The model is overloaded. Please try again later.")
		return
	}
	switch method {
	case "generateContent":
		table := gemini25Sizes
		if strings.HasPrefix(model, "gemini-3") {
			table = gemini3Sizes
		}
		size, ok := table[aspect]
		if !ok {
			gErr(400, "INVALID_ARGUMENT", "Unsupported aspect ratio: "+aspect)
			return
		}
		if a.policy {
			writeJSON(w, 200, map[string]any{"promptFeedback": map[string]any{"blockReason": "SAFETY"}, "usageMetadata": map[string]any{"promptTokenCount": 12}})
			return
		}
		iw, ih, _ := parseWxH(size)
		f.answered(vGemini, iw, ih)
		writeJSON(w, 200, map[string]any{"candidates": []any{map[string]any{
			"content":      map[string]any{"role": "model", "parts": []any{map[string]any{"text": "Here is the landscape."}, map[string]any{"inlineData": map[string]any{"mimeType": "image/png", "data": vendorB64(iw, ih)}}}},
			"finishReason": "STOP", "index": 0,
		}}, "usageMetadata": map[string]any{"promptTokenCount": 12, "candidatesTokenCount": 1290, "totalTokenCount": 1302}})
	case "predict":
		size, ok := imagenSizes[aspect]
		if !ok {
			gErr(400, "INVALID_ARGUMENT", "Aspect ratio "+aspect+" is not supported.")
			return
		}
		if a.policy {
			writeJSON(w, 200, map[string]any{"predictions": []any{map[string]any{"raiFilteredReason": "This prompt was blocked by our safety filters."}}})
			return
		}
		iw, ih, _ := parseWxH(size)
		preds := make([]any, n)
		for i := range preds {
			preds[i] = map[string]any{"bytesBase64Encoded": vendorB64(iw, ih), "mimeType": "image/png"}
		}
		f.answered(vGemini, iw, ih)
		writeJSON(w, 200, map[string]any{"predictions": preds})
	default:
		gErr(404, "NOT_FOUND", "Method not found.")
	}
}

func cmpOr(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// ideogram is Ideogram 3.0 (https://developer.ideogram.ai): Api-Key
// header, multipart form; the image at the resolution of the asked
// aspect_ratio, by a URL that expires; 422 when the prompt fails its
// safety check; magic_prompt defaults to AUTO (recorded: routelab must
// send OFF).
func (f *vendorFake) ideogram(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Api-Key") != fakeKeys[vIdeogram] {
		writeJSON(w, 401, map[string]any{"detail": "Invalid API key"})
		return
	}
	if err := r.ParseMultipartForm(8 << 20); err != nil {
		writeJSON(w, 400, map[string]any{"detail": "invalid form: " + err.Error()})
		return
	}
	aspect := cmpOr(r.FormValue("aspect_ratio"), "1x1")
	n, _ := strconv.Atoi(cmpOr(r.FormValue("num_images"), "1"))
	a := f.take(vendorCall{Vendor: vIdeogram, Model: r.FormValue("rendering_speed"), N: n, Aspect: aspect, MagicPrompt: cmpOr(r.FormValue("magic_prompt"), "AUTO")})
	switch {
	case a.hang:
		hang(r)
		return
	case a.status == 429:
		w.Header().Set("Retry-After", a.retryAfter)
		writeJSON(w, 429, map[string]any{"detail": "Too many requests"})
		return
	case a.status != 0:
		writeJSON(w, a.status, map[string]any{"detail": "Internal server error"})
		return
	case a.policy:
		writeJSON(w, 422, map[string]any{"error": "Prompt failed the safety check."})
		return
	}
	size, ok := ideogramSizes[aspect]
	if !ok {
		writeJSON(w, 400, map[string]any{"detail": "invalid aspect_ratio " + aspect})
		return
	}
	iw, ih, _ := parseWxH(size)
	data := make([]any, max(n, 1))
	for i := range data {
		data[i] = map[string]any{"prompt": r.FormValue("prompt"), "resolution": size, "is_image_safe": true, "seed": 12345, "style_type": "GENERAL", "url": f.fileURL(iw, ih)}
	}
	f.answered(vIdeogram, iw, ih)
	writeJSON(w, 200, map[string]any{"created": "2026-12-06T10:00:00Z", "data": data})
}

// ark is BytePlus ModelArk's images API for Seedream 4.5: Bearer key;
// size WxH with total pixels in [3686400, 16777216] (it refuses 1K);
// usage counts generated images; content refusals are error codes ending
// in SensitiveContentDetected.
func (f *vendorFake) ark(w http.ResponseWriter, r *http.Request) {
	aErr := func(status int, code, msg string) {
		writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg, "type": "BadRequest"}})
	}
	if r.Header.Get("Authorization") != "Bearer "+fakeKeys[vArk] {
		aErr(401, "AuthenticationError", "The API key in the request is missing or invalid.")
		return
	}
	var body struct {
		Model, Prompt, Size string
		ResponseFormat      string `json:"response_format"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		aErr(400, "InvalidParameter", "invalid JSON")
		return
	}
	a := f.take(vendorCall{Vendor: vArk, Model: body.Model, N: 1, Size: body.Size})
	switch {
	case a.hang:
		hang(r)
		return
	case a.status == 429:
		w.Header().Set("Retry-After", a.retryAfter)
		aErr(429, "RateLimitExceeded.EndpointRPMExceeded", "The request has exceeded the RPM limit.")
		return
	case a.status != 0:
		aErr(a.status, "InternalServiceError", "The service encountered an unexpected internal error.")
		return
	case a.policy:
		aErr(400, "OutputImageSensitiveContentDetected", "The request failed because the output image may contain sensitive information.")
		return
	}
	iw, ih, ok := parseWxH(body.Size)
	if !ok || iw*ih < 3686400 || iw*ih > 16777216 {
		aErr(400, "InvalidParameter", "The parameter `size` specified in the request is not valid: image size must be at least 3686400 pixels.")
		return
	}
	f.answered(vArk, iw, ih)
	writeJSON(w, 200, map[string]any{"model": body.Model, "created": 1765000000,
		"data":  []any{map[string]any{"b64_json": vendorB64(iw, ih), "size": body.Size}},
		"usage": map[string]any{"generated_images": 1, "output_tokens": iw * ih / 256, "total_tokens": iw * ih / 256}})
}

// bflSubmit is Black Forest Labs' submit (https://docs.bfl.ai): x-key,
// width and height in pixels (multiples of 16), answered with a task id,
// a polling URL on the API's host and the cost in credits ($0.01):
// FLUX.2 [pro] $0.03 a megapixel.
func (f *vendorFake) bflSubmit(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("x-key") != fakeKeys[vBFL] {
		writeJSON(w, 403, map[string]any{"detail": "Not authenticated - Invalid Authentication"})
		return
	}
	var body struct {
		Prompt        string
		Width, Height int
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeJSON(w, 422, map[string]any{"detail": "invalid body"})
		return
	}
	iw, ih := cmpInt(body.Width, 1024), cmpInt(body.Height, 1024)
	a := f.take(vendorCall{Vendor: vBFL, Model: r.PathValue("model"), N: 1, Size: fmt.Sprintf("%dx%d", iw, ih)})
	switch {
	case a.hang:
		hang(r)
		return
	case a.status == 429:
		w.Header().Set("Retry-After", a.retryAfter)
		writeJSON(w, 429, map[string]any{"detail": "You have exceeded the number of active tasks."})
		return
	case a.status != 0:
		writeJSON(w, a.status, map[string]any{"detail": "Internal Server Error"})
		return
	}
	if iw%16 != 0 || ih%16 != 0 || iw*ih > 4<<20 {
		writeJSON(w, 422, map[string]any{"detail": "width and height must be multiples of 16, at most 4 MP"})
		return
	}
	final := cmpOr(a.taskStatus, "Ready")
	if a.policy {
		final = "Request Moderated"
	}
	f.mu.Lock()
	f.nextID++
	id := fmt.Sprintf("task-%d", f.nextID)
	f.bfl[id] = &bflTask{w: iw, h: ih, pending: a.pending, final: final}
	f.mu.Unlock()
	credits := math.Round(3*float64(iw*ih)/1e6*100) / 100
	writeJSON(w, 200, map[string]any{"id": id, "polling_url": f.URL + "/bfl/v1/get_result?id=" + id, "cost": credits})
}

// bflPoll answers a task's state: Pending while it runs, then Ready with
// the sample's URL, or the failure or moderation it ended in.
func (f *vendorFake) bflPoll(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("x-key") != fakeKeys[vBFL] {
		writeJSON(w, 403, map[string]any{"detail": "Not authenticated"})
		return
	}
	id := r.URL.Query().Get("id")
	f.mu.Lock()
	task := f.bfl[id]
	var status string
	if task != nil {
		task.polls++
		status = task.final
		if task.polls <= task.pending {
			status = "Pending"
		}
	}
	f.mu.Unlock()
	switch {
	case task == nil:
		writeJSON(w, 200, map[string]any{"id": id, "status": "Task not found"})
	case status == "Ready":
		f.answered(vBFL, task.w, task.h)
		writeJSON(w, 200, map[string]any{"id": id, "status": "Ready", "result": map[string]any{"sample": f.fileURL(task.w, task.h), "seed": 42}})
	default:
		writeJSON(w, 200, map[string]any{"id": id, "status": status, "result": nil})
	}
}

func cmpInt(v, d int) int {
	if v == 0 {
		return d
	}
	return v
}
