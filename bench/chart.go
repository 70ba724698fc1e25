package main

import (
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// engineColors are the bars' colours; other engines get grey.
var engineColors = map[string]color.RGBA{
	"berth":          {0x2e, 0x8b, 0x57, 0xff},
	"podman":         {0x89, 0x2c, 0xa0, 0xff},
	"docker":         {0x1d, 0x63, 0xed, 0xff},
	"runc":           {0xe0, 0x8a, 0x1e, 0xff},
	"crun":           {0xc0, 0x39, 0x2b, 0xff},
	"testcontainers": {0x16, 0xa0, 0x85, 0xff},
}

// Chart geometry, in pixels.
const (
	chartWidth = 960
	margin     = 12
	labelWidth = 120 // engine names
	barHeight  = 14
	barGap     = 4
	groupGap   = 14
	titleLine  = 18
	valueRoom  = 90 // right of the longest bar, for its value
)

// drawChart draws the medians as horizontal bars, one group per
// scenario; within a group the bars share a scale (the longest is the
// group's slowest engine), so the picture shows the ratios.
func drawChart(w io.Writer, results []*result) error {
	height := margin
	for _, res := range results {
		height += titleLine + groupGap
		for _, r := range res.rows {
			if r.ok() {
				height += barHeight + barGap
			}
		}
	}
	height += margin
	img := image.NewRGBA(image.Rect(0, 0, chartWidth, height))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	face := basicfont.Face7x13
	text := func(x, y int, s string, c color.Color) {
		s = strings.ReplaceAll(s, "×", "x") // the 7x13 face is ASCII
		d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: face, Dot: fixed.P(x, y)}
		d.DrawString(s)
	}
	grey := color.RGBA{0x55, 0x55, 0x55, 0xff}
	y := margin
	barMax := chartWidth - 2*margin - labelWidth - valueRoom
	for _, res := range results {
		text(margin, y+13, res.s.name+": "+res.s.title, color.Black)
		y += titleLine
		var top float64
		for _, r := range res.rows {
			if r.ok() {
				top = max(top, r.median())
			}
		}
		for _, r := range res.rows {
			if !r.ok() {
				continue
			}
			c, ok := engineColors[r.name]
			if !ok {
				c = color.RGBA{0x80, 0x80, 0x80, 0xff}
			}
			text(margin+8, y+11, r.name, grey)
			n := 1
			if top > 0 {
				n = max(1, int(r.median()/top*float64(barMax)))
			}
			x0 := margin + labelWidth
			draw.Draw(img, image.Rect(x0, y, x0+n, y+barHeight), image.NewUniform(c), image.Point{}, draw.Src)
			text(x0+n+6, y+11, format(r.median(), res.s.unit), color.Black)
			y += barHeight + barGap
		}
		y += groupGap
	}
	return png.Encode(w, img)
}
