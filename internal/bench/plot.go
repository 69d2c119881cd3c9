package bench

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"strings"
)

// The plot is drawn with the standard library only: lines, markers and a
// 5×7 bitmap font (upper case, digits and a little punctuation).

// series is one line of a chart.
type series struct {
	name   string
	col    color.RGBA
	dashed bool
	xs, ys []float64
}

// chart is one panel: x is concurrency on a log2 scale, y is jobs/s.
type chart struct {
	title  string
	xlabel string
	ylabel string
	series []series
}

var (
	colWorker = color.RGBA{0x1f, 0x77, 0xb4, 0xff}
	colJS     = color.RGBA{0x2c, 0xa0, 0x2c, 0xff}
	colHTTP   = color.RGBA{0xff, 0x7f, 0x0e, 0xff}
	colIdeal  = color.RGBA{0x80, 0x80, 0x80, 0xff}
	colAxis   = color.RGBA{0x30, 0x30, 0x30, 0xff}
	colGrid   = color.RGBA{0xe4, 0xe4, 0xe4, 0xff}
)

// charts picks the panels the report has data for.
func (r *Report) charts() []chart {
	var out []chart
	pick := func(scenario, name string) (xs, ys []float64) {
		for _, x := range r.Rows {
			if x.Scenario == scenario && x.Name == name {
				xs, ys = append(xs, float64(x.Concurrency)), append(ys, x.JobsPerS)
			}
		}
		return
	}
	if xs, ys := pick("overhead", "worker"); len(xs) > 0 {
		c := chart{title: "Overhead: no latency, no rate limit", xlabel: "concurrency", ylabel: "jobs/s"}
		jx, jy := pick("overhead", "raw JetStream")
		hx, hy := pick("overhead", "raw HTTP")
		c.series = append(c.series,
			series{name: "raw JetStream", col: colJS, xs: jx, ys: jy},
			series{name: "raw HTTP", col: colHTTP, xs: hx, ys: hy},
			series{name: "worker", col: colWorker, xs: xs, ys: ys})
		out = append(out, c)
	}
	if xs, ys := pick("latency", "worker"); len(xs) > 0 {
		c := chart{title: "Latency-bound: Clerk latency 100 ms", xlabel: "concurrency", ylabel: "jobs/s"}
		var ix, iy []float64
		for _, x := range r.Rows {
			if x.Scenario == "latency" {
				ix, iy = append(ix, float64(x.Concurrency)), append(iy, x.Ideal)
			}
		}
		c.series = append(c.series,
			series{name: "ideal min(c/latency, limit)", col: colIdeal, dashed: true, xs: ix, ys: iy},
			series{name: "worker", col: colWorker, xs: xs, ys: ys})
		out = append(out, c)
	}
	return out
}

// WritePlot draws the throughput charts to a PNG file. It returns
// ErrNoRows when the report has nothing to plot.
func (r *Report) WritePlot(path string) error {
	cs := r.charts()
	if len(cs) == 0 {
		return ErrNoRows
	}
	const pw, ph = 560, 420
	img := image.NewRGBA(image.Rect(0, 0, pw*len(cs), ph))
	fill(img, img.Bounds(), color.RGBA{0xff, 0xff, 0xff, 0xff})
	for i, c := range cs {
		c.draw(img, image.Rect(i*pw, 0, (i+1)*pw, ph))
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

func (c chart) draw(img *image.RGBA, r image.Rectangle) {
	const scale = 2
	left, right, top, bottom := r.Min.X+70, r.Max.X-20, r.Min.Y+50, r.Max.Y-60
	text(img, r.Min.X+(r.Dx()-textWidth(c.title, scale))/2, r.Min.Y+12, c.title, scale, colAxis)
	xmin, xmax := math.Inf(1), math.Inf(-1)
	ymax := 0.0
	for _, s := range c.series {
		for i := range s.xs {
			xmin, xmax = math.Min(xmin, s.xs[i]), math.Max(xmax, s.xs[i])
			ymax = math.Max(ymax, s.ys[i])
		}
	}
	if xmin == xmax {
		xmin, xmax = xmin/2, xmax*2
	}
	step := niceStep(ymax / 5)
	ytop := math.Ceil(ymax*1.08/step) * step
	lx0, lx1 := math.Log2(xmin), math.Log2(xmax)
	px := func(x float64) int {
		return left + int(float64(right-left)*(math.Log2(x)-lx0)/(lx1-lx0)+0.5)
	}
	py := func(y float64) int { return bottom - int(float64(bottom-top)*y/ytop+0.5) }
	// Grid, ticks and labels.
	for y := 0.0; y <= ytop+step/2; y += step {
		line(img, left, py(y), right, py(y), colGrid, 1, false)
		l := fmtNum(y)
		text(img, left-8-textWidth(l, 1*scale/2+1), py(y)-5, l, 1*scale/2+1, colAxis)
	}
	ticks := map[float64]bool{}
	for _, s := range c.series {
		for _, x := range s.xs {
			ticks[x] = true
		}
	}
	for x := range ticks {
		line(img, px(x), top, px(x), bottom, colGrid, 1, false)
		l := fmtNum(x)
		text(img, px(x)-textWidth(l, 2)/2, bottom+8, l, 2, colAxis)
	}
	line(img, left, bottom, right, bottom, colAxis, 2, false)
	line(img, left, top, left, bottom, colAxis, 2, false)
	text(img, left+(right-left-textWidth(c.xlabel+" (log scale)", 2))/2, bottom+30, c.xlabel+" (log scale)", 2, colAxis)
	text(img, r.Min.X+8, top-22, c.ylabel, 2, colAxis)
	// Series.
	for _, s := range c.series {
		for i := range s.xs {
			if i > 0 {
				line(img, px(s.xs[i-1]), py(s.ys[i-1]), px(s.xs[i]), py(s.ys[i]), s.col, 3, s.dashed)
			}
			if !s.dashed {
				fill(img, image.Rect(px(s.xs[i])-4, py(s.ys[i])-4, px(s.xs[i])+5, py(s.ys[i])+5), s.col)
			}
		}
	}
	// Legend, top left inside the plot.
	ly := top + 8
	for _, s := range c.series {
		line(img, left+12, ly+6, left+40, ly+6, s.col, 3, s.dashed)
		text(img, left+48, ly, s.name, 2, colAxis)
		ly += 20
	}
}

func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if raw <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func fmtNum(v float64) string {
	switch {
	case v >= 10000 && math.Mod(v, 1000) == 0:
		return fmt.Sprintf("%.0fK", v/1000)
	case v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.1f", v)
	}
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}

// line draws a w-pixel line (Bresenham), dashed if asked.
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA, w int, dashed bool) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for n := 0; n < 100000; n++ {
		if !dashed || (n/8)%2 == 0 {
			fill(img, image.Rect(x0-w/2, y0-w/2, x0-w/2+w, y0-w/2+w), c)
		}
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v < 0:
		return -1
	case v > 0:
		return 1
	}
	return 0
}

func textWidth(s string, scale int) int { return len([]rune(s)) * 6 * scale }

// text draws s upper-cased in the 5×7 font, scale pixels per dot.
func text(img *image.RGBA, x, y int, s string, scale int, c color.RGBA) {
	for _, r := range strings.ToUpper(s) {
		g, ok := font5x7[r]
		if !ok {
			g = font5x7['?']
		}
		for row := 0; row < 7; row++ {
			for col := 0; col < 5; col++ {
				if g[row]&(1<<(4-col)) != 0 {
					fill(img, image.Rect(x+col*scale, y+row*scale, x+(col+1)*scale, y+(row+1)*scale), c)
				}
			}
		}
		x += 6 * scale
	}
}

// font5x7 is a classic 5×7 dot-matrix font; each byte is a row, the low
// five bits its dots, left to right.
var font5x7 = map[rune][7]byte{
	'0': {0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e},
	'1': {0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e},
	'2': {0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f},
	'3': {0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e},
	'4': {0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02},
	'5': {0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e},
	'6': {0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e},
	'7': {0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08},
	'8': {0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e},
	'9': {0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c},
	'A': {0x0e, 0x11, 0x11, 0x11, 0x1f, 0x11, 0x11},
	'B': {0x1e, 0x11, 0x11, 0x1e, 0x11, 0x11, 0x1e},
	'C': {0x0e, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0e},
	'D': {0x1c, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1c},
	'E': {0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x1f},
	'F': {0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x10},
	'G': {0x0e, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0f},
	'H': {0x11, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11},
	'I': {0x0e, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e},
	'J': {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0c},
	'K': {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11},
	'L': {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1f},
	'M': {0x11, 0x1b, 0x15, 0x15, 0x11, 0x11, 0x11},
	'N': {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11},
	'O': {0x0e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e},
	'P': {0x1e, 0x11, 0x11, 0x1e, 0x10, 0x10, 0x10},
	'Q': {0x0e, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0d},
	'R': {0x1e, 0x11, 0x11, 0x1e, 0x14, 0x12, 0x11},
	'S': {0x0f, 0x10, 0x10, 0x0e, 0x01, 0x01, 0x1e},
	'T': {0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04},
	'U': {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e},
	'V': {0x11, 0x11, 0x11, 0x11, 0x11, 0x0a, 0x04},
	'W': {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0a},
	'X': {0x11, 0x11, 0x0a, 0x04, 0x0a, 0x11, 0x11},
	'Y': {0x11, 0x11, 0x11, 0x0a, 0x04, 0x04, 0x04},
	'Z': {0x1f, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1f},
	' ': {},
	'.': {0, 0, 0, 0, 0, 0x0c, 0x0c},
	',': {0, 0, 0, 0, 0x0c, 0x04, 0x08},
	':': {0, 0x0c, 0x0c, 0, 0x0c, 0x0c, 0},
	'/': {0, 0x01, 0x02, 0x04, 0x08, 0x10, 0},
	'-': {0, 0, 0, 0x1f, 0, 0, 0},
	'=': {0, 0, 0x1f, 0, 0x1f, 0, 0},
	'(': {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02},
	')': {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08},
	'%': {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03},
	'?': {0x0e, 0x11, 0x01, 0x02, 0x04, 0, 0x04},
	'×': {0, 0x11, 0x0a, 0x04, 0x0a, 0x11, 0},
}
