package storage

// The key layout: every key the Store writes is one of the whole keys
// below, or one of the prefixes (ending in "/") followed by a name, id or
// hash. No other file spells a key; doc.go describes each one, and
// TestDocListsEveryKey keeps the two in step.
const (
	// Whole keys.
	layoutSchema          = "meta/schema"
	layoutBootstrapped    = "meta/bootstrapped"
	layoutScriptSeq       = "meta/script_seq"
	layoutLogIndex        = "meta/log_index"
	layoutRestoring       = "meta/restoring"
	layoutNodeCA          = "meta/node_ca"
	layoutTriggerInstance = "g/instance"

	// Prefixes.
	layoutModules     = "m/"
	layoutFunctions   = "f/"
	layoutCode        = "c/"
	layoutRefs        = "r/"
	layoutSubjects    = "s/"
	layoutTokens      = "t/"
	layoutScripts     = "app/"
	layoutActivations = "a/"
	layoutQueued      = "q/"
	layoutOutbox      = "o/"
	layoutEgress      = "e/"
	layoutQuotas      = "quota/"
	layoutJoinTokens  = "j/"
	layoutNodeCerts   = "n/"
	layoutCron        = "g/cron/"
	layoutRotatedKeys = "meta/secrets_keys/"
)

// Key constructors.
func keySchema() []byte               { return []byte(layoutSchema) }
func keyBootstrapped() []byte         { return []byte(layoutBootstrapped) }
func keyScriptSeq() []byte            { return []byte(layoutScriptSeq) }
func keyLogIndex() []byte             { return []byte(layoutLogIndex) }
func keyRestoring() []byte            { return []byte(layoutRestoring) }
func keyNodeCA() []byte               { return []byte(layoutNodeCA) }
func keyModule(m string) []byte       { return []byte(layoutModules + m) }
func keyFunction(m, f string) []byte  { return []byte(layoutFunctions + m + "/" + f) }
func prefixFunctions(m string) []byte { return []byte(layoutFunctions + m + "/") }
func keyCode(h string) []byte         { return []byte(layoutCode + h) }
func keyRef(h string) []byte          { return []byte(layoutRefs + h) }
func keySubject(n string) []byte      { return []byte(layoutSubjects + n) }
func keyToken(h string) []byte        { return []byte(layoutTokens + h) }
func keyScript(name string) []byte    { return []byte(layoutScripts + name) }
func keyActivation(id string) []byte  { return []byte(layoutActivations + id) }
func keyQueued(id string) []byte      { return []byte(layoutQueued + id) }
func keyOutbox(id string) []byte      { return []byte(layoutOutbox + id) }
func keyEgress(subject string) []byte { return []byte(layoutEgress + subject) }
func keyQuota(subject string) []byte  { return []byte(layoutQuotas + subject) }
func keyJoinToken(hash string) []byte { return []byte(layoutJoinTokens + hash) }
func keyNodeCert(name string) []byte  { return []byte(layoutNodeCerts + name) }
func keyCron(key string) []byte       { return []byte(layoutCron + key) }
func keyRotatedKey(id string) []byte  { return []byte(layoutRotatedKeys + id) }

// Prefixes and keys used as byte slices as they are.
var (
	prefixModules     = []byte(layoutModules)
	prefixAllFuncs    = []byte(layoutFunctions)
	prefixRefs        = []byte(layoutRefs)
	prefixSubjects    = []byte(layoutSubjects)
	prefixScripts     = []byte(layoutScripts)
	prefixActivations = []byte(layoutActivations)
	prefixQueued      = []byte(layoutQueued)
	prefixOutbox      = []byte(layoutOutbox)
	prefixNodeCerts   = []byte(layoutNodeCerts)
	prefixCron        = []byte(layoutCron)
	prefixRotatedKeys = []byte(layoutRotatedKeys)
	keyTriggerPrefix  = []byte(layoutTriggerInstance)
)

// prefixEnd returns the smallest key greater than every key with prefix p.
// Prefixes here always end in "/", which is never 0xff.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	end[len(end)-1]++
	return end
}
