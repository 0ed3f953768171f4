/** A chat message as a Teams MessageCard (the format classic incoming webhooks take). */

export interface TeamsMessage {
  text: string;
  title?: string;
  /** Hex colour of the card's edge, e.g. `D70000`. */
  themeColor?: string;
  facts?: Array<{ name: string; value: string }>;
}

export interface MessageCard {
  '@type': 'MessageCard';
  '@context': 'https://schema.org/extensions';
  summary: string;
  title?: string;
  text: string;
  themeColor?: string;
  sections?: Array<{ facts: Array<{ name: string; value: string }> }>;
}

export function toMessageCard(m: TeamsMessage): MessageCard {
  return {
    '@type': 'MessageCard',
    '@context': 'https://schema.org/extensions',
    summary: (m.title ?? m.text).slice(0, 200),
    ...(m.title ? { title: m.title } : {}),
    text: m.text,
    ...(m.themeColor ? { themeColor: m.themeColor } : {}),
    ...(m.facts?.length ? { sections: [{ facts: m.facts }] } : {}),
  };
}

export function fromMessageCard(c: MessageCard): TeamsMessage {
  return { text: c.text, ...(c.title ? { title: c.title } : {}), ...(c.themeColor ? { themeColor: c.themeColor } : {}), ...(c.sections?.[0]?.facts ? { facts: c.sections[0].facts } : {}) };
}
