package server

import (
	"context"
	"fmt"
	"image"
	"image/color"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/sync/semaphore"
)

// decodeBudget bounds the memory reference decoding may take: per request
// (the sum of its references' decode cost) and across the replica (a
// weighted semaphore every decode holds its cost of). The pixel cap alone
// is not a memory bound: 40 MP is 160 MB as 8-bit RGBA but 320 MB as a
// 16-bit PNG, and a progressive JPEG holds its coefficients besides.
type decodeBudget struct {
	perRequest int64
	total      *semaphore.Weighted
	totalBytes int64
}

func newDecodeBudget(perRequest, total int64) *decodeBudget {
	return &decodeBudget{perRequest: perRequest, total: semaphore.NewWeighted(total), totalBytes: total}
}

// decodeCost estimates the bytes decoding an image of cfg takes: its
// pixels at the decoder's bytes per pixel (8 for 16-bit colour, 2 for
// 16-bit gray, 1 for gray or paletted, 4 otherwise), plus, for JPEG, the
// coefficients a progressive scan keeps (2 bytes per sample, 3 components).
func decodeCost(cfg image.Config, format string) int64 {
	px := int64(cfg.Width) * int64(cfg.Height)
	bpp := int64(4)
	switch cfg.ColorModel {
	case color.RGBA64Model, color.NRGBA64Model:
		bpp = 8
	case color.Gray16Model:
		bpp = 2
	case color.GrayModel, color.AlphaModel:
		bpp = 1
	}
	if _, ok := cfg.ColorModel.(color.Palette); ok {
		bpp = 1
	}
	if format == "jpeg" {
		bpp = 3 + 6
	}
	return px * bpp
}

// acquire books cost bytes of the replica's budget for one decode, waiting
// while other decodes hold it; used is what the request booked before. The
// returned release must be called once the decoded pixels are dropped.
func (b *decodeBudget) acquire(ctx context.Context, field string, cost, used int64) (func(), error) {
	if used+cost > b.perRequest || cost > b.totalBytes {
		return nil, &Error{Status: fiber.StatusRequestEntityTooLarge, Code: CodeReferenceTooLarge, Field: field,
			Message: fmt.Sprintf("decoding the references would take %d MB; at most %d MB per request", (used+cost)>>20, b.perRequest>>20)}
	}
	if err := b.total.Acquire(ctx, cost); err != nil {
		return nil, err
	}
	return func() { b.total.Release(cost) }, nil
}
