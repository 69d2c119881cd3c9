package ratebudget_test

import (
	"context"
	"fmt"
	"time"

	"github.com/clerkjobs/clerkjobs/internal/ratebudget"
)

func ExampleParseLimit() {
	for _, s := range []string{"1000/10s", "100/s", "100", "60/1m", "none", "100/10"} {
		l, err := ratebudget.ParseLimit(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(l)
	}
	// Output:
	// 1000/10s
	// 100/s
	// 100/s
	// 60/m
	// none
	// invalid rate limit "100/10": window "10" is not a duration such as 10s or 1m; write calls per window as Clerk states it, e.g. 1000/10s, 100/s or 100 (per second), or 0 for none
}

// A budget for this process alone: the fleet's schedule, in memory.
func ExampleNewLocal() {
	budget, err := ratebudget.NewLocal(ratebudget.Limit{N: 100, Per: 10 * time.Second})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer budget.Close()
	for range 3 {
		if err := budget.Wait(context.Background()); err != nil {
			fmt.Println(err)
			return
		}
	}
	st := budget.Stats()
	fmt.Printf("%s: %d calls, %.2f calls/s at most\n", st.Limit, st.Granted, st.Rate)
	// Output:
	// 100/10s: 3 calls, 9.75 calls/s at most
}
