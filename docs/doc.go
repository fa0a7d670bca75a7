// Package docs holds creditrecon's documentation pages, one per audience (operations.md,
// finance.md, policies.md, reliability.md, performance.md, development.md), and the test that
// keeps the links between the repository's Markdown files working. It has no code outside its
// tests.
//
// The test reads every Markdown file of the repository (README.md, docs/*.md, k8s/README.md and
// any other) and checks each relative link, [text](path#anchor): the path must name a file or
// directory inside the repository, and an #anchor must be made by a heading of the target
// Markdown file under GitHub's rules (lower case; a space becomes a hyphen; punctuation other than
// hyphens and underscores is dropped; a repeated heading gets -1, -2, ...). Only ATX headings
// (# Title) make anchors, which is all these files use. Text in code spans, fenced code blocks
// and HTML comments is not rendered as links, so it is not checked; nor are links with a scheme
// (https:, mailto:), which are not relative. The test also keeps README.md a front page of at
// most 160 lines whose first code block runs scripts that exist.
package docs
