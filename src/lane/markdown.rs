//! Markdown both ways. Reading: which lines of a comment or description a reader sees as the
//! writer's own words, so that commands and `Postmortem:` lines count only there. Writing: text
//! from a change (titles, postmortem values, file paths, branch names) placed in what the lane
//! writes under its name renders as itself, never as markup, an image, a link or a mention.
//!
//! Read as GitHub does: CommonMark with tables, task lists, strikethrough, footnotes and math.

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

/// One line of a paragraph, as a reader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The text shown: the text of emphasis and links included, code spans kept in backticks
    /// (code stays recognisably code), raw HTML and image descriptions left out.
    pub text: String,
    /// In a list item, at any depth.
    pub in_list: bool,
    /// Begins with plain text: not with emphasis, a link, code, a checkbox or HTML.
    pub plain_start: bool,
}

/// The block containers a line can sit in, as far as [`paragraph_lines`] cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    /// A paragraph, or a tight list item's text (which has no paragraph of its own).
    Words,
    Item,
    /// A block quote or a footnote: someone else's words, or an aside.
    Aside,
    /// Headings, tables, code, HTML blocks, lists: no paragraph lines directly in them.
    Other,
}

/// The lines of the paragraphs and list items of `markdown` that stand as the writer's own
/// words: nothing inside code (fenced with any fence, or indented), block quotes, footnotes,
/// headings, tables, HTML blocks or comments, nor between raw HTML tags that wrap it (a
/// `<details>` hides what follows until its `</details>`).
pub fn paragraph_lines(markdown: &str) -> Vec<Line> {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_MATH
        | Options::ENABLE_GFM;
    let mut reader = Reader::default();
    for event in Parser::new_ext(markdown, options) {
        reader.event(event);
    }
    reader.end_line();
    reader.lines
}

#[derive(Default)]
struct Reader {
    lines: Vec<Line>,
    blocks: Vec<Block>,
    /// Elements that raw HTML opened and has not closed yet.
    html_open: usize,
    /// The HTML block being read: its tags are counted once it is whole.
    html_block: String,
    /// Depth of emphasis, links and the like inside the current paragraph.
    inline: usize,
    images: usize,
    /// Whether the current line has begun, and (if it counts) what it holds so far.
    started: bool,
    line: Option<Line>,
}

impl Reader {
    fn event(&mut self, event: Event) {
        match event {
            Event::Start(tag) => match tag {
                Tag::Emphasis
                | Tag::Strong
                | Tag::Strikethrough
                | Tag::Superscript
                | Tag::Subscript
                | Tag::Link { .. }
                | Tag::Image { .. } => {
                    self.touch(false);
                    self.inline += 1;
                    self.images += usize::from(matches!(tag, Tag::Image { .. }));
                }
                tag => {
                    self.end_line();
                    self.blocks.push(match tag {
                        Tag::Paragraph => Block::Words,
                        Tag::Item => Block::Item,
                        Tag::BlockQuote(_) | Tag::FootnoteDefinition(_) => Block::Aside,
                        _ => Block::Other,
                    });
                }
            },
            Event::End(end) => match end {
                TagEnd::Emphasis
                | TagEnd::Strong
                | TagEnd::Strikethrough
                | TagEnd::Superscript
                | TagEnd::Subscript
                | TagEnd::Link
                | TagEnd::Image => {
                    self.inline -= 1;
                    self.images -= usize::from(end == TagEnd::Image);
                }
                end => {
                    self.end_line();
                    self.blocks.pop();
                    if end == TagEnd::HtmlBlock {
                        self.html_open = open_after(&std::mem::take(&mut self.html_block), self.html_open);
                    }
                }
            },
            Event::Text(text) => {
                self.touch(self.inline == 0);
                if self.images == 0 {
                    self.push(&text);
                }
            }
            Event::Code(code) => {
                self.touch(false);
                self.push(&format!("`{code}`"));
            }
            Event::InlineHtml(html) => {
                self.touch(false);
                self.html_open = open_after(&html, self.html_open);
            }
            Event::Html(html) => self.html_block.push_str(&html),
            Event::SoftBreak | Event::HardBreak => self.end_line(),
            Event::InlineMath(_) | Event::FootnoteReference(_) | Event::TaskListMarker(_) => self.touch(false),
            Event::DisplayMath(_) | Event::Rule => {}
        }
    }

    /// Something inline arrives: the first thing of a line decides whether the line counts.
    fn touch(&mut self, plain: bool) {
        if self.started {
            return;
        }
        self.started = true;
        let words = matches!(self.blocks.last(), Some(Block::Words | Block::Item));
        if words && self.html_open == 0 && !self.blocks.contains(&Block::Aside) {
            let in_list = self.blocks.contains(&Block::Item);
            self.line = Some(Line { text: String::new(), in_list, plain_start: plain });
        }
    }

    fn push(&mut self, text: &str) {
        if let Some(line) = &mut self.line {
            line.text.push_str(text);
        }
    }

    fn end_line(&mut self) {
        self.started = false;
        self.lines.extend(self.line.take());
    }
}

/// HTML elements that take no closing tag.
const VOID: &[&str] =
    &["area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"];

/// How many elements are open after `html`, `open` being open before it: a rough count of
/// opening and closing tags (comments, void and self-closing elements aside). It only has to
/// see that raw HTML wraps what follows; counting too many hides lines, which fails safe.
fn open_after(html: &str, mut open: usize) -> usize {
    let mut rest = html;
    while let Some(at) = rest.find('<') {
        rest = &rest[at + 1..];
        if let Some(comment) = rest.strip_prefix("!--") {
            rest = comment.find("-->").map_or("", |end| &comment[end + 3..]);
            continue;
        }
        let closing = rest.starts_with('/');
        let name = rest.trim_start_matches('/');
        let name = &name[..name.find(|c: char| !c.is_ascii_alphanumeric() && c != '-').unwrap_or(name.len())];
        if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
            continue;
        }
        let end = rest.find('>').unwrap_or(rest.len());
        if closing {
            open = open.saturating_sub(1);
        } else if !VOID.iter().any(|v| v.eq_ignore_ascii_case(name)) && !rest[..end].ends_with('/') {
            open += 1;
        }
        rest = &rest[end..];
    }
    open
}

/// Characters that must not reach a page from a change's text: control characters (a line
/// break would start a new block) and bidirectional overrides (which make text read other
/// than it is). Controls become spaces, overrides are dropped.
fn cleaned(text: &str, keep_lines: bool) -> String {
    text.chars()
        .filter(|c| !matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'))
        .filter_map(|c| match c {
            '\n' | '\t' if keep_lines => Some(c),
            '\r' if keep_lines => None,
            c if c.is_control() => Some(' '),
            c => Some(c),
        })
        .collect()
}

/// Text as inline Markdown that renders as itself. Markdown punctuation is backslash-escaped,
/// and so are the characters that would open a block at the start of a line (`#`, `-`, `+`,
/// `=`, `1.`); `<`, `>`, `&` and `$` (math) are written as entities.
///
/// `@` is followed by a zero-width space (`@&#8203;`): GitHub links a mention only where a
/// name follows `@` directly, and it finds mentions in the rendered text, after escapes and
/// entities are resolved, so `\@` or `&#64;` would still notify. The reader sees a plain `@`.
pub fn text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // Whether everything so far is spaces, or spaces then digits: what starts a block.
    let (mut at_start, mut digits) = (true, false);
    for c in cleaned(text, false).chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' => out.extend(['\\', c]),
            '#' | '-' | '+' | '=' if at_start => out.extend(['\\', c]),
            '.' | ')' if digits => out.extend(['\\', c]),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '$' => out.push_str("&#36;"),
            '@' => out.push_str("@&#8203;"),
            c => out.push(c),
        }
        digits = c.is_ascii_digit() && (at_start || digits);
        at_start &= c == ' ';
    }
    out
}

/// The longest run of backticks in `text`.
fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

/// `text` as a code span: shown exactly (nothing is markup inside code, and GitHub links no
/// mentions there), between backtick runs longer than any in it.
pub fn code(text: &str) -> String {
    let text = cleaned(text, false);
    let ticks = "`".repeat(longest_backtick_run(&text) + 1);
    // A space on both sides keeps a leading or trailing backtick apart from the fence, and
    // CommonMark takes one such pair off again.
    let spaced = text.is_empty()
        || text.starts_with('`')
        || text.ends_with('`')
        || (text.starts_with(' ') && text.ends_with(' ') && text.trim() != "");
    let pad = if spaced { " " } else { "" };
    format!("{ticks}{pad}{text}{pad}{ticks}")
}

/// `text` of any number of lines as a fenced code block, with a fence longer than any
/// backtick run in it, so no line of it can close the block.
pub fn fence(text: &str) -> String {
    let text = cleaned(text, true);
    let ticks = "`".repeat(longest_backtick_run(&text).max(2) + 1);
    format!("{ticks}\n{text}\n{ticks}")
}

/// Markdown (made by [`text`] or [`code`]) for a table cell: a `|`, even inside a code span,
/// would end the cell, so each is escaped (a table reads `\|` as `|`, in code too).
pub fn cell(markdown: &str) -> String {
    markdown.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(markdown: &str) -> Vec<String> {
        paragraph_lines(markdown).into_iter().map(|l| l.text).collect()
    }

    #[test]
    fn lines_are_read_as_shown() {
        let found = paragraph_lines("Hello **there**\n- [x] `done` [link](https://x) ![alt](i.png)\n\nbye  \nnow");
        let texts: Vec<&str> = found.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["Hello there", "`done` link ", "bye", "now"]);
        assert_eq!(found.iter().map(|l| l.in_list).collect::<Vec<_>>(), [false, true, false, false]);
        assert_eq!(found.iter().map(|l| l.plain_start).collect::<Vec<_>>(), [true, false, true, true]);
        assert!(!paragraph_lines("*x* y")[0].plain_start);
        assert!(!paragraph_lines("<b>x</b> y")[0].plain_start);
    }

    #[test]
    fn hidden_and_quoted_lines_are_not_the_writers_words() {
        for hidden in [
            "    indented code",
            "```\nfenced\n```",
            "~~~~\n```\nstill fenced\n~~~~",
            "> quoted",
            "- > quoted in a list",
            "<!--\nhidden\n-->",
            "<div>\nhtml\n</div>",
            "<details>\n\ncollapsed\n\n</details>",
            "# heading",
            "| a |\n|---|\n| cell |",
            "[^1]: footnote",
            "[ref]: /url",
        ] {
            assert_eq!(lines(hidden), Vec::<String>::new(), "{hidden:?}");
        }
        assert_eq!(lines("<details><summary>s</summary>\n\nin\n\n</details>\n\nout"), ["out"]);
        assert_eq!(lines("a <!-- b\nc --> d"), ["a  d"]);
    }

    #[test]
    fn open_elements_are_counted_roughly() {
        assert_eq!(open_after("<details><summary>x</summary>", 0), 1);
        assert_eq!(open_after("<br><img src=x><hr/><p/>", 0), 0);
        assert_eq!(open_after("<!-- <details> --></details></div>", 1), 0);
        assert_eq!(open_after("a < b, 1<2", 0), 0);
    }

    /// What `markdown` renders as: its text, and whether anything but text (and code) appears.
    fn rendered(markdown: &str) -> (String, Vec<String>) {
        let mut text = String::new();
        let mut other = Vec::new();
        let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_MATH;
        for event in Parser::new_ext(markdown, options) {
            match event {
                Event::Text(t) | Event::Code(t) => text.push_str(&t),
                Event::Start(Tag::Paragraph) | Event::End(TagEnd::Paragraph) => {}
                e => other.push(format!("{e:?}")),
            }
        }
        (text, other)
    }

    const HOSTILE: &[&str] = &[
        "soon` <img src=https://attacker.example/p.png> @acme/everyone",
        "**bold** _em_ ~~gone~~ [link](https://x) ![i](https://x/i.png) <https://x>",
        "# heading",
        "- item",
        "+ item",
        "1. item",
        "12) item",
        "> quote",
        "=== setext?",
        "<!-- comment --> <details>",
        "a\nb\n\n<script>x</script>",
        "back\\slash\\ and `code` and ``more``",
        "$x^2$ and $$y$$",
        "&amp; &#64;team &lt;b&gt;",
        "[^1] [x][y] | pipe |",
        "trailing backslash\\",
        "rtl \u{202E}txt.exe",
    ];

    #[test]
    fn text_renders_as_itself() {
        for hostile in HOSTILE {
            let (shown, other) = rendered(&text(hostile));
            assert!(other.is_empty(), "{hostile:?} rendered {other:?}");
            let expected = cleaned(hostile, false).replace('@', "@\u{200B}");
            assert_eq!(shown, expected, "{hostile:?}");
        }
        assert_eq!(text("Fix checkout (v2)."), "Fix checkout (v2).", "ordinary text stays readable");
        assert_eq!(text("@acme/everyone"), "@&#8203;acme/everyone");
    }

    #[test]
    fn code_spans_show_their_text_exactly() {
        for hostile in HOSTILE.iter().chain(&["`", "``x", "y`", " padded ", "   "]) {
            let span = code(hostile);
            let events: Vec<Event> = Parser::new(&span).collect();
            let expected = cleaned(hostile, false);
            assert!(
                matches!(&events[..], [Event::Start(Tag::Paragraph), Event::Code(c), Event::End(TagEnd::Paragraph)] if **c == *expected),
                "{hostile:?} → {span:?} → {events:?}"
            );
        }
        assert_eq!(code("app/server.rs"), "`app/server.rs`");
    }

    #[test]
    fn fences_cannot_be_closed_from_inside() {
        let inside = "line 1\n````\n```\n<img src=x>\nend";
        let block = fence(inside);
        let events: Vec<Event> = Parser::new(&block).collect();
        let (first, last) = (events.first(), events.last());
        assert!(matches!(first, Some(Event::Start(Tag::CodeBlock(_)))) && last == Some(&Event::End(TagEnd::CodeBlock)));
        let shown: String = events[1..events.len() - 1]
            .iter()
            .map(|e| match e {
                Event::Text(t) => t.to_string(),
                other => panic!("{other:?} inside the block"),
            })
            .collect();
        assert_eq!(shown, format!("{inside}\n"));
        assert!(fence("plain").starts_with("```\n"));
    }

    #[test]
    fn cells_keep_pipes_inside_their_cell() {
        let row = format!("| {} | {} |", cell(&code("a|b`c\\|")), cell(&text("x | y \\| z")));
        let table = format!("| path | state |\n|---|---|\n{row}\n");
        let cells: Vec<String> = Parser::new_ext(&table, Options::ENABLE_TABLES)
            .skip_while(|e| *e != Event::End(TagEnd::TableHead))
            .filter_map(|e| match e {
                Event::Code(t) | Event::Text(t) => Some(t.to_string()),
                Event::End(TagEnd::TableCell) => Some("|".into()),
                _ => None,
            })
            .collect();
        assert_eq!(cells.concat(), "a|b`c\\||x | y \\| z|");
    }
}
