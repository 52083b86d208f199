package main

import (
	"go.temporal.io/server/common/config"
)

// archivalConfig enables Temporal's history archival with the filestore provider (the compose
// server's config template does the same), so that a closed upgrade's history — who consented
// and confirmed what, when — outlives the namespace's retention. Namespaces opt in with the
// URI file://<dir> (setupNamespaces). Visibility archival stays off: the fleet reports
// carry the summary.
func archivalConfig(conf *config.Config, dir string) {
	conf.Archival.History = config.HistoryArchival{
		State: "enabled", EnableRead: true,
		Provider: &config.HistoryArchiverProvider{Filestore: &config.FilestoreArchiver{FileMode: "0640", DirMode: "0750"}},
	}
	conf.Archival.Visibility.State = "disabled"
	conf.NamespaceDefaults.Archival.History = config.HistoryArchivalNamespaceDefaults{State: "enabled", URI: "file://" + dir}
	conf.NamespaceDefaults.Archival.Visibility.State = "disabled"
}
