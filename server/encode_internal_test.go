package server

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http/httptest"
	"testing"

	"github.com/gofiber/fiber/v2"
)

// TestSendImagesBase64: an image the provider sent in base64 goes out as
// sent (no second encoding); without it, or when it cannot be the
// image's encoding (wrong length), the bytes are encoded here.
func TestSendImagesBase64(t *testing.T) {
	raw := []byte("\x89PNG\r\n\x1a\nimage bytes")
	other := base64.StdEncoding.EncodeToString([]byte("\x89PNG\r\n\x1a\nIMAGE BYTES")) // same length, different text
	for _, tc := range []struct {
		name, b64, want string
	}{
		{"provider base64 passed through", other, other},
		{"no provider base64", "", base64.StdEncoding.EncodeToString(raw)},
		{"wrong length is not used", other + "AAAA", base64.StdEncoding.EncodeToString(raw)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := fiber.New()
			app.Get("/", func(c *fiber.Ctx) error {
				return sendImages(c, struct {
					ID string `json:"id"`
				}{"req_1"}, "images", []imageOut{{raw: raw, b64: tc.b64, MIMEType: "image/png", Width: 1, Height: 1}}, false)
			})
			resp, err := app.Test(httptest.NewRequest("GET", "/", nil))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			var got struct {
				ID     string `json:"id"`
				Images []struct {
					B64 string `json:"b64_json"`
				} `json:"images"`
			}
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("response is not JSON: %v\n%s", err, body)
			}
			if got.ID != "req_1" || len(got.Images) != 1 || got.Images[0].B64 != tc.want {
				t.Errorf("response %s, want id req_1 and b64_json %q", body, tc.want)
			}
		})
	}
}
