package nbdb

import _ "embed"

//go:embed ovn-nb.ovsschema
var schemaJSON []byte

// SchemaJSON returns the raw schema file the models were generated from, so
// tests can create a real database (ovsdb-tool create) that is guaranteed to
// match the models, whatever schema the installed OVN ships.
func SchemaJSON() []byte {
	return append([]byte(nil), schemaJSON...)
}
