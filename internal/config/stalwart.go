package config

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// StalwartDataPath returns the RocksDB directory named in Stalwart's own
// configuration file, so an operator points tailer at the file Stalwart
// already reads instead of copying the path (and forgetting to change it
// in both places).
//
// Stalwart 0.16 keeps a single small JSON file on disk (by default
// /etc/stalwart/config.json) that describes only its data store; every
// other setting lives inside that store. The file is the serde_json form
// of the DataStore enum, tagged by "@type" (stalwartlabs/stalwart v0.16.18,
// crates/registry/src/schema/structs.rs: `#[serde(tag = "@type")] pub enum
// DataStore { RocksDb(RocksDbStore), Sqlite(..), FoundationDb(..),
// PostgreSql(..), MySql(..) }`, and RocksDbStore's fields `path`,
// `blobSize`, `bufferSize`, `poolWorkers`, `cacheSize`). It is read by
// crates/store/src/registry/local.rs (read_data_store:
// serde_json::from_str::<DataStore>), and the path is the RocksDB
// directory itself (crates/store/src/backend/rocksdb/main.rs opens
// config.path, no subdirectory). A RocksDB config.json is therefore:
//
//	{"@type": "RocksDb", "path": "/var/lib/stalwart/", "cacheSize": 134217728}
//
// "RocksDb.path" in tailer's messages names that field. Other fields are
// ignored, as Stalwart's serde(default) does. A relative path is refused:
// Stalwart resolves it against its own working directory, which tailer
// cannot know.
func StalwartDataPath(file string) (string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("--stalwart-config: %w", err)
	}
	var ds struct {
		Type *string `json:"@type"`
		Path *string `json:"path"`
	}
	if err := json.Unmarshal(data, &ds); err != nil {
		return "", fmt.Errorf("--stalwart-config %s: not Stalwart 0.16's JSON data store configuration: %v", file, err)
	}
	switch {
	case ds.Type == nil:
		return "", fmt.Errorf("--stalwart-config %s: no \"@type\": not Stalwart 0.16's config.json (its data store, e.g. {\"@type\": \"RocksDb\", \"path\": \"/var/lib/stalwart/\"}); give --db instead", file)
	case *ds.Type != "RocksDb":
		return "", fmt.Errorf("--stalwart-config %s: Stalwart's data store is %s, not RocksDb: tailer backs up RocksDB stores only", file, *ds.Type)
	case ds.Path == nil || *ds.Path == "":
		return "", fmt.Errorf("--stalwart-config %s: the RocksDb data store has no \"path\"; give --db instead", file)
	case !filepath.IsAbs(*ds.Path):
		return "", fmt.Errorf("--stalwart-config %s: RocksDb.path %q is relative to Stalwart's working directory; give --db with the absolute path", file, *ds.Path)
	}
	return filepath.Clean(*ds.Path), nil
}
