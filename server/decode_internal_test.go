package server

import (
	"encoding/json"
	"errors"
	"mime"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestUnmarshalAgreesWithEncodingJSON: request bodies are decoded with
// goccy/go-json for speed; on every body here it must accept what
// encoding/json accepts, into the same values, and refuse what it refuses.
func TestUnmarshalAgreesWithEncodingJSON(t *testing.T) {
	bodies := []string{
		`{"prompt":"a fox","n":2,"size":"1024x1024","quality":"premium"}`,
		`{"PROMPT":"case folded","Mode":"edit"}`,
		`{"prompt":"dup","prompt":"last wins"}`,
		`{"prompt":"esc \" \\ \/ \b\f\n\r\t \u00e9 \ud83d\ude00 \u2028"}`,
		`{"prompt":"bad surrogate \ud800 end"}`,
		"{\"prompt\":\"raw invalid utf8 \xff\xfe\"}",
		`{"prompt":"x","unknown":{"deep":[1,2,{"a":null}]}}`,
		`{"prompt":null,"n":null,"references":null}`,
		`{"n":1.5}`, `{"n":"2"}`, `{"n":1e3}`, `{"n":99999999999999999999}`, `{"n":-0}`,
		`{"prompt":1}`, `{"prompt":["a"]}`, `{"constraints":{"text_heavy":"yes"}}`,
		`{"constraints":{"text_heavy":true,"preserve_subject":false,"max_latency_ms":8000,"max_cost_usd":0.25}}`,
		`{"references":["https://example.com/a.png","aGVsbG8=",{"url":"http://x/y.png"},{"b64_json":"aGk="},{"image_url":"https://z/q.webp"}]}`,
		`{"references":[{}]}`, `{"references":[1]}`, `{"references":"not a list"}`,
		`{"prompt":"x"} trailing`, `{"prompt":"x",}`, `{"prompt":"x"`, `[]`, `null`, `"str"`, `{}`, ` {"prompt" : "spaced" } `,
		`{"prompt":"x","n":2,"n":3}`, `{"model":"auto","user":"u-1","parent_id":"req_1","response_format":"url","aspect_ratio":"16:9","output_format":"webp"}`,
	}
	for _, b := range bodies {
		t.Run(b, func(t *testing.T) {
			var want imageRequest
			wantErr := json.Unmarshal([]byte(b), &want)
			var got imageRequest
			gotErr := unmarshal([]byte(b), &got)
			if (wantErr == nil) != (gotErr == nil) {
				t.Fatalf("encoding/json err %v, unmarshal err %v", wantErr, gotErr)
			}
			if wantErr != nil {
				return
			}
			if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(imageRequest{})); diff != "" {
				t.Errorf("decoded differently (-encoding/json +unmarshal):\n%s", diff)
			}
		})
	}
}

// TestNetworkReadErrorIsNotInternal: fiber turns a connection that fails
// mid-request into ErrBadGateway; that is the client's doing and must not be
// logged as an internal error.
func TestNetworkReadErrorIsNotInternal(t *testing.T) {
	if e := toError(fiber.ErrBadGateway); e.Code == CodeInternal || e.Status >= 500 {
		t.Errorf("toError(ErrBadGateway) = %d %s, want a 4xx client error", e.Status, e.Code)
	}
	if e := toError(errors.New("boom")); e.Code != CodeInternal {
		t.Errorf("toError(plain error) = %s, want internal", e.Code)
	}
}

// TestPlainMediaTypeAgreesWithParseMediaType: the fast path may only take
// what mime.ParseMediaType would return unchanged.
func TestPlainMediaTypeAgreesWithParseMediaType(t *testing.T) {
	for _, ct := range []string{
		"application/json", "multipart/form-data", "application/vnd.api+json", "image/svg+xml",
		"Application/JSON", "application/json; charset=utf-8", "application/json ", " application/json",
		"application/", "/json", "application", "", "a/b/c", "application/json;", "text/plain\x00",
	} {
		want, _, err := mime.ParseMediaType(ct)
		if err != nil {
			want = ""
		}
		if plainMediaType(ct) && ct != want {
			t.Errorf("plainMediaType(%q) takes it as is, ParseMediaType gives %q", ct, want)
		}
	}
	if !plainMediaType("application/json") || !plainMediaType("multipart/form-data") {
		t.Error("the common types miss the fast path")
	}
}
