// OpenWhisk's shape: a global function main(params).
function main(params) {
  const words = String(params.text || "").split(/\s+/).filter(Boolean);
  return { words: words.length, first: words[0] || null };
}
