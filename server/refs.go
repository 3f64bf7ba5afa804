package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"image/jpeg"
	"image/png"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	xdraw "golang.org/x/image/draw"
	_ "golang.org/x/image/webp" // registers the WebP decoder for image.Decode

	"github.com/gofiber/fiber/v2"
)

// refLoader turns references into normalised PNG bytes: fetched safely when
// they are URLs, sniffed by their bytes, checked against the pixel limit
// before decoding, oriented, stripped of metadata, resized, re-encoded, and
// cached by the hash of the bytes as sent.
type refLoader struct {
	cfg    Config
	log    *slog.Logger
	client *http.Client
	cache  *lru.Cache[[32]byte, []byte]
	budget *decodeBudget
}

var errForbiddenAddr = errors.New("address not allowed")

func newRefLoader(cfg Config, logger *slog.Logger) *refLoader {
	cache, _ := lru.New[[32]byte, []byte](cfg.RefCacheSize)
	l := &refLoader{cfg: cfg, log: logger.With("component", "refs"), cache: cache, budget: newDecodeBudget(cfg.DecodeBytes, cfg.DecodeBytesTotal)}
	dialer := &net.Dialer{
		Timeout: 5 * time.Second,
		// Control sees the resolved address of every connection, including
		// those made for redirects, so DNS answers and redirects cannot
		// smuggle a request to a private or metadata address.
		Control: func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			ip, err := netip.ParseAddr(host)
			if err != nil || !l.allowed(ip) {
				return fmt.Errorf("%w: %s", errForbiddenAddr, host)
			}
			return nil
		},
	}
	l.client = &http.Client{
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: cfg.RefFetchTimeout,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       30 * time.Second,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("too many redirects")
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return fmt.Errorf("%w: redirect to %s", errForbiddenAddr, req.URL.Scheme)
			}
			return nil
		},
	}
	return l
}

// allowed reports whether a reference URL may connect to ip.
func (l *refLoader) allowed(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range l.cfg.RefAllow {
		if p.Contains(ip) {
			return true
		}
	}
	return publicAddr(ip)
}

// publicAddr reports whether ip is a global unicast address outside every
// special-purpose block (IANA's IPv4 and IPv6 special-purpose registries),
// including the IPv6 ranges that reach an IPv4 address through a
// translator or relay: NAT64 and the IPv4-compatible/translated forms
// always (the embedded address may be private), 6to4 when the IPv4 address
// it embeds is not public itself.
func publicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsGlobalUnicast() || ip.IsPrivate() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return false
		}
	}
	if sixToFour.Contains(ip) {
		b := ip.As16()
		return publicAddr(netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}))
	}
	return true
}

var sixToFour = netip.MustParsePrefix("2002::/16")

var nonPublic = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8",       // "this network"
		"100.64.0.0/10",   // carrier-grade NAT
		"192.0.0.0/24",    // IETF protocol assignments
		"192.0.2.0/24",    // documentation
		"198.18.0.0/15",   // benchmarking
		"198.51.100.0/24", // documentation
		"203.0.113.0/24",  // documentation
		"240.0.0.0/4",     // reserved
		"::/96",           // IPv4-compatible (deprecated)
		"::ffff:0:0:0/96", // IPv4-translated (SIIT)
		"64:ff9b::/96",    // NAT64 well-known prefix
		"64:ff9b:1::/48",  // NAT64 local use
		"100::/64",        // discard
		"2001::/23",       // IETF protocol assignments, Teredo among them
		"2001:db8::/32",   // documentation
		"3fff::/20",       // documentation
		"fec0::/10",       // site-local (deprecated)
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// load returns the job's references normalised, in order.
func (l *refLoader) load(ctx context.Context, refs []refInput) ([][]byte, error) {
	out := make([][]byte, 0, len(refs))
	var used int64 // decode bytes booked by this request's references
	for i, r := range refs {
		field := fmt.Sprintf("references[%d]", i)
		raw, err := r.raw(field, l.cfg.MaxRefBytes)
		if err == nil && r.URL != "" && r.Bytes == nil {
			raw, err = l.fetch(ctx, field, r.URL)
		}
		if err != nil {
			return nil, err
		}
		if len(raw) > l.cfg.MaxRefBytes {
			return nil, &Error{Status: fiber.StatusRequestEntityTooLarge, Code: CodeReferenceTooLarge, Field: field, Message: fmt.Sprintf("reference larger than %d bytes", l.cfg.MaxRefBytes)}
		}
		sum := sha256.Sum256(raw)
		if b, ok := l.cache.Get(sum); ok {
			out = append(out, b)
			continue
		}
		b, cost, err := l.normalise(ctx, raw, field, used)
		if err != nil {
			return nil, err
		}
		used += cost
		l.cache.Add(sum, b)
		out = append(out, b)
	}
	return out, nil
}

// fetch gets a reference URL's bytes. Once the request is under way every
// failure (an address the filter refuses after DNS or a redirect, refused
// or timed-out connections, a status, a size, bytes that are no image) is
// the same error to the caller: telling them apart would let a caller map
// hosts and ports through this server. The detail goes to the log.
func (l *refLoader) fetch(ctx context.Context, field, raw string) ([]byte, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return nil, errField(CodeReferenceForbidden, field, "reference URLs must be http or https")
	}
	if ip, err := netip.ParseAddr(u.Hostname()); err == nil && !l.allowed(ip) {
		return nil, errField(CodeReferenceForbidden, field, "reference URL points at a private, loopback or link-local address")
	}
	b, err := l.get(ctx, u)
	if err != nil {
		l.log.Info("reference fetch failed", "host", u.Host, "err", err)
		return nil, errField(CodeReferenceFetch, field, "reference URL could not be fetched as an image")
	}
	return b, nil
}

// get returns the image bytes at u, or why not.
func (l *refLoader) get(ctx context.Context, u *url.URL) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.RefFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	if resp.ContentLength > int64(l.cfg.MaxRefBytes) {
		return nil, fmt.Errorf("content length %d over %d", resp.ContentLength, l.cfg.MaxRefBytes)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, int64(l.cfg.MaxRefBytes)+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if len(b) > l.cfg.MaxRefBytes {
		return nil, fmt.Errorf("body over %d bytes", l.cfg.MaxRefBytes)
	}
	if sniff(b) == "" {
		return nil, fmt.Errorf("%d bytes that are no PNG, JPEG or WebP", len(b))
	}
	return b, nil
}

// sniff names the image format by its magic bytes, or "".
func sniff(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return "png"
	case bytes.HasPrefix(b, []byte{0xff, 0xd8, 0xff}):
		return "jpeg"
	case len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return "webp"
	}
	return ""
}

// normalise checks and re-encodes one reference as PNG.
// normalise decodes raw within the decode budget (used is what the
// request booked before) and returns it as PNG, with the bytes it booked.
func (l *refLoader) normalise(ctx context.Context, raw []byte, field string, used int64) ([]byte, int64, error) {
	format := sniff(raw)
	if format == "" {
		return nil, 0, errField(CodeReferenceFormat, field, "reference is not a PNG, JPEG or WebP image")
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(raw))
	if err != nil {
		return nil, 0, errField(CodeReferenceFormat, field, "reference image header is corrupt")
	}
	maxPixels := l.cfg.MaxRefPixels
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width*cfg.Height > maxPixels || cfg.Width > 1<<16 || cfg.Height > 1<<16 {
		return nil, 0, errField(CodeReferenceBomb, field, fmt.Sprintf("reference is %dx%d; at most %d pixels", cfg.Width, cfg.Height, maxPixels))
	}
	cost := decodeCost(cfg, format)
	release, err := l.budget.acquire(ctx, field, cost, used)
	if err != nil {
		return nil, 0, err
	}
	defer release()
	b, err := decodeToPNG(raw, format, field, l.cfg.RefMaxSide)
	return b, cost, err
}

// decodeToPNG decodes raw (EXIF-oriented when a JPEG), scales it to fit
// maxSide and encodes it as PNG.
func decodeToPNG(raw []byte, format, field string, maxSide int) ([]byte, error) {
	img, _, err := image.Decode(bytes.NewReader(raw))
	if err != nil {
		return nil, errField(CodeReferenceFormat, field, "reference image data is corrupt")
	}
	if format == "jpeg" {
		img = orient(img, jpegOrientation(raw))
	}
	if b := img.Bounds(); b.Dx() > maxSide || b.Dy() > maxSide {
		scale := float64(maxSide) / float64(max(b.Dx(), b.Dy()))
		w, h := max(1, int(float64(b.Dx())*scale)), max(1, int(float64(b.Dy())*scale))
		dst := image.NewNRGBA(image.Rect(0, 0, w, h))
		xdraw.ApproxBiLinear.Scale(dst, dst.Bounds(), img, b, xdraw.Src, nil)
		img = dst
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("encode reference: %w", err)
	}
	return buf.Bytes(), nil
}

var _ = jpeg.Decode // the JPEG decoder is registered by importing image/jpeg

// jpegOrientation reads the EXIF orientation tag (1..8) from a JPEG, 1 when
// absent or unreadable.
func jpegOrientation(b []byte) int {
	i := 2
	for i+4 <= len(b) {
		if b[i] != 0xff {
			return 1
		}
		marker := b[i+1]
		if marker == 0xda || marker == 0xd9 { // start of scan, end of image
			return 1
		}
		n := int(binary.BigEndian.Uint16(b[i+2:]))
		if n < 2 || i+2+n > len(b) {
			return 1
		}
		seg := b[i+4 : i+2+n]
		if marker == 0xe1 && len(seg) > 14 && string(seg[:6]) == "Exif\x00\x00" {
			return exifOrientation(seg[6:])
		}
		i += 2 + n
	}
	return 1
}

func exifOrientation(t []byte) int {
	if len(t) < 8 {
		return 1
	}
	var bo binary.ByteOrder
	switch string(t[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 1
	}
	off := int(bo.Uint32(t[4:]))
	if off+2 > len(t) {
		return 1
	}
	n := int(bo.Uint16(t[off:]))
	for k := 0; k < n; k++ {
		e := off + 2 + 12*k
		if e+12 > len(t) {
			return 1
		}
		if bo.Uint16(t[e:]) == 0x0112 {
			v := int(bo.Uint16(t[e+8:]))
			if v >= 1 && v <= 8 {
				return v
			}
			return 1
		}
	}
	return 1
}

// orient applies an EXIF orientation so the pixels stand the way the
// camera meant; metadata is dropped on re-encode.
func orient(src image.Image, o int) image.Image {
	if o <= 1 || o > 8 {
		return src
	}
	b := src.Bounds()
	w, h := b.Dx(), b.Dy()
	dw, dh := w, h
	if o >= 5 {
		dw, dh = h, w
	}
	dst := image.NewNRGBA(image.Rect(0, 0, dw, dh))
	tmp := image.NewNRGBA(image.Rect(0, 0, w, h))
	draw.Draw(tmp, tmp.Bounds(), src, b.Min, draw.Src)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var dx, dy int
			switch o {
			case 2:
				dx, dy = w-1-x, y
			case 3:
				dx, dy = w-1-x, h-1-y
			case 4:
				dx, dy = x, h-1-y
			case 5:
				dx, dy = y, x
			case 6:
				dx, dy = h-1-y, x
			case 7:
				dx, dy = h-1-y, w-1-x
			case 8:
				dx, dy = y, w-1-x
			}
			dst.SetNRGBA(dx, dy, tmp.NRGBAAt(x, y))
		}
	}
	return dst
}
