package server

import (
	"context"
	"errors"
	"image"
	"image/color"
	"testing"
	"time"
)

func TestDecodeCost(t *testing.T) {
	tests := []struct {
		name   string
		cfg    image.Config
		format string
		want   int64
	}{
		{"8-bit RGBA", image.Config{ColorModel: color.NRGBAModel, Width: 1000, Height: 1000}, "png", 4e6},
		{"16-bit RGBA", image.Config{ColorModel: color.NRGBA64Model, Width: 1000, Height: 1000}, "png", 8e6},
		{"gray", image.Config{ColorModel: color.GrayModel, Width: 1000, Height: 1000}, "png", 1e6},
		{"JPEG, coefficients kept", image.Config{ColorModel: color.YCbCrModel, Width: 1000, Height: 1000}, "jpeg", 9e6},
	}
	for _, tt := range tests {
		if got := decodeCost(tt.cfg, tt.format); got != tt.want {
			t.Errorf("%s: decodeCost = %d, want %d", tt.name, got, tt.want)
		}
	}
}

// TestDecodeBudgetTotal: decodes in flight hold their cost of the replica's
// budget; the next one waits for a release, or for its context.
func TestDecodeBudgetTotal(t *testing.T) {
	b := newDecodeBudget(100, 100)
	release, err := b.acquire(context.Background(), "f", 80, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.acquire(ctx, "f", 30, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("acquire past the total with a done context = %v, want context.Canceled", err)
	}
	got := make(chan error, 1)
	go func() {
		r, err := b.acquire(context.Background(), "f", 30, 0)
		if err == nil {
			r()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("second decode ran while the first held the budget (err %v)", err)
	case <-time.After(50 * time.Millisecond):
	}
	release()
	if err := <-got; err != nil {
		t.Fatalf("after the release: %v", err)
	}
}
