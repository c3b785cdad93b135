//! Markdown as people read it: which lines of a comment or description a reader sees as the
//! writer's own words, so that commands and `Postmortem:` lines count only there.
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
}
