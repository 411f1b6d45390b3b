import { useEffect, useRef, useState } from 'preact/hooks';

/** A suggestion of the list under a query box. */
export interface Completion {
  text: string; // what insert receives
  label: string; // what the list shows
  badge: string; // one letter naming the kind
  badgeClass: string; // '' or 'value'
}

/** What the caller computes for the text before the cursor. */
export interface Completions {
  items: Completion[];
  typing: boolean; // a prefix is being typed, so Enter completes instead of running
}

interface Props {
  value: string;
  onSubmit: (q: string) => void;
  placeholder: string;
  testId: string;
  listTestId: string;
  runTestId: string;
  runLabel: string;
  /** useCompletions is a hook: called on every render with the text before the cursor. */
  useCompletions: (before: string) => Completions;
  /** insert puts c into text at cursor and says where the cursor goes. */
  insert: (text: string, cursor: number, c: Completion) => { text: string; cursor: number };
}

/**
 * CompletingInput is a one-line query box with a suggestion list: arrows move
 * through it, Tab (or Enter while a prefix is typed) takes a suggestion, Enter
 * runs the query. The TraceQL and LogQL boxes differ only in what they suggest.
 */
export function CompletingInput(p: Props) {
  const [text, setText] = useState(p.value);
  const [cursor, setCursor] = useState(p.value.length);
  const [open, setOpen] = useState(false);
  const [active, setActive] = useState(0);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => setText(p.value), [p.value]);
  const { items, typing } = p.useCompletions(text.slice(0, cursor));

  const accept = (c: Completion) => {
    const next = p.insert(text, cursor, c);
    setText(next.text);
    setCursor(next.cursor);
    setActive(0);
    requestAnimationFrame(() => input.current?.setSelectionRange(next.cursor, next.cursor));
  };
  const caret = (e: Event) => setCursor((e.target as HTMLInputElement).selectionStart ?? 0);

  return (
    <div class="traceql">
      <input
        ref={input}
        class="query mono"
        data-testid={p.testId}
        spellcheck={false}
        value={text}
        placeholder={p.placeholder}
        onInput={(e) => {
          const el = e.target as HTMLInputElement;
          setText(el.value);
          setCursor(el.selectionStart ?? el.value.length);
          setOpen(true);
          setActive(0);
        }}
        onClick={caret}
        onKeyUp={(e) => {
          if (['ArrowLeft', 'ArrowRight', 'Home', 'End'].includes(e.key)) caret(e);
        }}
        onFocus={() => setOpen(true)}
        onBlur={() => setTimeout(() => setOpen(false), 150)}
        onKeyDown={(e) => {
          const show = open && items.length > 0;
          if (show && e.key === 'ArrowDown') {
            setActive((a) => (a + 1) % items.length);
            e.preventDefault();
          } else if (show && e.key === 'ArrowUp') {
            setActive((a) => (a - 1 + items.length) % items.length);
            e.preventDefault();
          } else if (show && (e.key === 'Tab' || (e.key === 'Enter' && !e.ctrlKey && !e.metaKey && typing))) {
            accept(items[Math.min(active, items.length - 1)]);
            e.preventDefault();
          } else if (e.key === 'Escape') setOpen(false);
          else if (e.key === 'Enter') {
            setOpen(false);
            p.onSubmit(text);
          }
        }}
      />
      <button class="btn primary" data-testid={p.runTestId} onClick={() => p.onSubmit(text)}>
        {p.runLabel}
      </button>
      {open && items.length > 0 && (
        <ul class="suggest" data-testid={p.listTestId}>
          {items.map((c, i) => (
            <li
              key={c.text}
              class={i === active ? 'on' : ''}
              onMouseDown={(e) => {
                e.preventDefault();
                accept(c);
              }}
            >
              <span class={'kind ' + c.badgeClass}>{c.badge}</span>
              <span>{c.label}</span>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
