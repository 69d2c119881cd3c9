// Package schemas holds the JSON Schemas (draft 2020-12) of every message
// the worker accepts or emits: one per job type, the result message, and the
// progress update. They are the source of truth: the worker validates each
// job against them, and publishers may too.
//
//	list.json         sessions.list
//	create.json       sessions.create
//	get.json          sessions.get
//	refresh.json      sessions.refresh
//	revoke.json       sessions.revoke
//	token.json        sessions.token.request
//	revoke_all.json   sessions.revoke_all
//	progress.json     revoke_all progress updates sent to reply_to
//	result.json       sessions.results.<tenant>.<op>.<id key>.<generation>.<seq>, and the message sent to reply_to
package schemas

import "embed"

// FS holds every *.json schema, by file name.
//
//go:embed *.json
var FS embed.FS
