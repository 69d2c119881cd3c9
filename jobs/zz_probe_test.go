package jobs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/clerkjobs/clerkjobs/internal/embedded"
)

func dump(ve *jsonschema.ValidationError, d int) {
	fmt.Printf("%s%T %v loc=%v kw=%v\n", strings.Repeat("  ", d), ve.ErrorKind, ve.ErrorKind, ve.InstanceLocation, ve.ErrorKind.KeywordPath())
	for _, c := range ve.Causes {
		dump(c, d+1)
	}
}

func TestZZProbe(t *testing.T) {
	sch, _ := compiled()
	for _, c := range []struct{ op Op; b string }{{OpList, `{}`}, {OpList, `{"usr_id":"user_1"}`}, {OpRevoke, `{"sesion_id":"sess_1"}`}, {OpRevoke, `{"session_id":"bad"}`}} {
		doc, _ := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(c.b)))
		err := sch[c.op].Validate(doc)
		var ve *jsonschema.ValidationError
		errors.As(err, &ve)
		fmt.Println("==", c.b)
		dump(ve, 0)
	}
	// history truncation
	d := DeadLetter{Subject: "sessions.revoke", Op: OpRevoke, Error: ErrorInfo{Class: ClassExhausted, Message: "x"}}
	for i := 0; i < 10; i++ {
		d.History = append(d.History, Failure{At: time.Now(), Error: strings.Repeat("clerk said no ", 10), Status: 503})
	}
	h := d.Header()
	fmt.Println(len(h.Get(HeaderHistory)))
	_, err := ParseDeadLetter(h)
	fmt.Println("parse:", err)

	s, err := embedded.Start(embedded.Options{StoreDir: t.TempDir()})
	if err != nil { t.Fatal(err) }
	defer s.Shutdown()
	nc, _ := nats.Connect(s.ClientURL())
	defer nc.Close()
	js, _ := jetstream.New(nc)
	top := DefaultTopology()
	top.ResultsMaxAge = 5 * time.Minute
	fmt.Println("validate:", top.Validate())
	_, err = top.Ensure(context.Background(), js)
	fmt.Println("ensure:", err)
	top = DefaultTopology()
	top.DeadLetterMaxAge = 5 * time.Minute
	_, err = top.Ensure(context.Background(), js)
	fmt.Println("ensure dlq:", err)
	// header wire trip
	m := nats.NewMsg("x.y")
	m.Header.Set("A", "  lead and trail  ")
	sub, _ := nc.SubscribeSync("x.y")
	nc.PublishMsg(m)
	got, _ := sub.NextMsg(time.Second)
	fmt.Printf("wire: %q\n", got.Header.Get("A"))
}
