package jobs

import ("fmt"; "strings"; "testing"; "time")

func TestZZProbe(t *testing.T) {
	for _, n := range []int{10, 20, 40} {
		var items []string
		for i := 0; i < n; i++ { items = append(items, fmt.Sprintf("1e%d", 999999-i)) }
		b := `{"user_id":"user_1","except_session_ids":[` + strings.Join(items, ",") + `]}`
		start := time.Now()
		_, err := Decode(OpRevokeAll, []byte(b))
		e := fmt.Sprint(err); if len(e) > 90 { e = e[:90] }
		fmt.Printf("n=%d %5d bytes %v %s\n", n, len(b), time.Since(start).Round(time.Millisecond), e)
	}
	for _, n := range []int{10, 20, 40} {
		var items []string
		for i := 0; i < n; i++ { items = append(items, fmt.Sprintf("1e%d", 999999-i)) }
		b := `{"user_id":"user_1","except_session_ids":[` + strings.Join(items, ",") + `]}`
		_ = b
		b2 := `{"user_id":"user_1","offset":` + items[0] + `,"limit":` + items[1] + `}`
		start := time.Now()
		Decode(OpList, []byte(b2))
		fmt.Printf("two numbers %v\n", time.Since(start).Round(time.Millisecond))
		break
	}
}
