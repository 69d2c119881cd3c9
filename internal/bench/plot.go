package bench

import (
	"errors"
	"image/color"
	"os"
	"strconv"

	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// flows are the overhead scenario's flows, one line each in legend order,
// in colours and markers that stay apart in grey and for colour-blind
// readers (Okabe–Ito palette).
var flows = []struct {
	name  string
	color color.RGBA
	glyph draw.GlyphDrawer
}{
	{"raw JetStream", color.RGBA{0x00, 0x9e, 0x73, 0xff}, draw.TriangleGlyph{}},
	{"raw HTTP", color.RGBA{0xe6, 0x9f, 0x00, 0xff}, draw.SquareGlyph{}},
	{"worker", color.RGBA{0x00, 0x72, 0xb2, 0xff}, draw.CircleGlyph{}},
}

// WritePlot draws the overhead scenario's throughput against concurrency,
// one line per flow, as a PNG file. It returns ErrNoRows when the report
// has no overhead rows.
func (r *Report) WritePlot(path string) error {
	p := plot.New()
	p.Title.Text = "Overhead: throughput against concurrency\n(Clerk emulator without latency or rate limit; median of each point's runs)"
	p.X.Label.Text = "concurrency (jobs in flight, log scale)"
	p.Y.Label.Text = "throughput (jobs/s)"
	p.X.Scale = plot.LogScale{}
	p.Y.Tick.Marker = thousands{}
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.XOffs, p.Legend.YOffs = vg.Points(8), -vg.Points(8)
	for _, st := range []*text.Style{&p.Title.TextStyle, &p.X.Label.TextStyle, &p.Y.Label.TextStyle, &p.X.Tick.Label, &p.Y.Tick.Label, &p.Legend.TextStyle} {
		st.Font.Variant = "Sans"
	}
	p.Title.TextStyle.Font.Size = vg.Points(13)
	p.Add(plotter.NewGrid())
	var ticks plot.ConstantTicks
	top := 0.0
	for _, f := range flows {
		var xys plotter.XYs
		for _, x := range r.Rows {
			if x.Scenario == "overhead" && x.Name == f.name {
				xys = append(xys, plotter.XY{X: float64(x.Concurrency), Y: x.JobsPerS})
				if f.name == "worker" {
					ticks = append(ticks, plot.Tick{Value: float64(x.Concurrency), Label: strconv.Itoa(x.Concurrency)})
				}
				top = max(top, x.JobsPerS)
			}
		}
		if len(xys) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(xys)
		if err != nil {
			return err
		}
		line.Color, line.Width = f.color, vg.Points(2)
		points.Color, points.Shape, points.Radius = f.color, f.glyph, vg.Points(4)
		p.Add(line, points)
		p.Legend.Add(f.name, line, points)
	}
	if len(ticks) == 0 {
		return ErrNoRows
	}
	p.X.Tick.Marker = ticks
	// Throughput from zero, with room above the lines for the legend, and
	// the first and last points off the plot's edges.
	p.Y.Min, p.Y.Max = 0, top*1.3
	p.X.Min, p.X.Max = ticks[0].Value/1.3, ticks[len(ticks)-1].Value*1.3

	c := vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(8*vg.Inch, 5*vg.Inch), vgimg.UseDPI(144))}
	p.Draw(draw.New(c))
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = c.WriteTo(f)
	return errors.Join(err, f.Close())
}

// thousands are gonum's default ticks, every one labelled, with thousands
// separators.
type thousands struct{}

func (thousands) Ticks(lo, hi float64) []plot.Tick {
	p := message.NewPrinter(language.English)
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	for i, t := range ticks {
		ticks[i].Label = p.Sprintf("%d", int64(t.Value))
	}
	return ticks
}
