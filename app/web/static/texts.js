// Swedish user interface text for the codes the API uses. Code in English, text in Swedish.

export const ROLE = {
  handlaggare: "handläggare",
  samordnare: "samordnare",
  lasare: "läsare",
  org_admin: "organisationsadministratör",
  auditor: "granskare",
  rss: "RSS-analytiker",
  system: "systemintegration",
  platform_admin: "plattformsadministratör",
};

export const ORG_KIND = {
  kommun: "kommun",
  region: "region",
  state: "statlig myndighet",
  other: "annan aktör",
};

export const PLAN_STATUS = {
  draft: "Utkast",
  active: "Aktiv",
  paused: "Pausad",
  closed: "Avslutad",
  cancelled: "Makulerad",
};

export const TRANSITION = {
  active: "Aktivera planen",
  paused: "Pausa planen",
  closed: "Avsluta planen",
  cancelled: "Makulera planen",
};

export const TRANSITION_DONE = {
  active: "Planen är aktiverad.",
  paused: "Planen är pausad.",
  closed: "Planen är avslutad.",
  cancelled: "Planen är makulerad.",
};

export const ACTION_STATUS = {
  proposed: "Föreslagen, väntar på svar",
  accepted: "Accepterad",
  disputed: "Bestriden",
  started: "Påbörjad",
  completed: "Slutförd",
  cancelled: "Struken",
};

export const PARTICIPANT_KIND = {
  huvudman: "Huvudman",
  other: "Annan aktör",
  client: "Klienten",
  narstaende: "Närstående",
};

export const CONSENT_METHOD = {
  written: "Skriftligt",
  verbal: "Muntligt",
  digital: "Digitalt",
};

export const GENDER = {
  kvinna: "Kvinna",
  man: "Man",
  annat: "Annat",
  okant: "Okänt",
};

export const PHASE = {
  lvm_anmalan: "LVM-anmälan (6 §)",
  lvm_utredning: "LVM-utredning (7 §)",
  omedelbart_omhandertagande: "Omedelbart omhändertagande (13 §)",
  lvm_ansokan: "Ansökan om LVM-vård",
  lvm_vard: "LVM-vård",
  vard_i_annan_form: "Vård i annan form (27 §)",
  utskrivning: "Utskrivning",
  eftervard: "Eftervård",
  avslutad: "Avslutad",
};

export const SIGNAL = {
  discharge_without_aftercare_plan: "Utskrivning utan eftervårdsplan",
  follow_up_overdue: "Uppföljning försenad",
  lvm_care_near_six_months: "LVM-vården närmar sig sex månader",
  action_unanswered: "Insats väntar på svar",
  meeting_without_other_huvudman: "Möte utan den andra huvudmannen",
  follow_up_due: "Uppföljning närmar sig",
};

export function signalText(item) {
  const due = item.due || "";
  switch (item.signal) {
    case "discharge_without_aftercare_plan":
      return `Utskrivning från LVM-vård ${due}. Det finns ingen aktiv SIP med eftervårdsinsatser.`;
    case "follow_up_overdue":
      return `Planens uppföljning skulle ha skett senast ${due}.`;
    case "lvm_care_near_six_months":
      return `LVM-vården når sex månader ${due}. Planera eftervården nu.`;
    case "action_unanswered":
      return "En insats som din organisation föreslagits att ansvara för väntar på att accepteras eller bestridas.";
    case "meeting_without_other_huvudman":
      return "Ett kallat SIP-möte saknar deltagare från den andra huvudmannen. Kalla kommunen eller regionen.";
    case "follow_up_due":
      return `Planens uppföljning ska ske senast ${due}.`;
    default:
      return item.reason || "";
  }
}

export const MEETING_RESPONSE = {
  pending: "Inte besvarad",
  accepted: "Kommer",
  declined: "Kommer inte",
  proposed_time: "Föreslår annan tid",
};

export const MEETING_WARNING = {
  meeting_without_other_huvudman:
    "Kallelsen saknar någon från den andra huvudmannen: både kommun och region bör vara med.",
  invitee_cannot_read_plan:
    "En inbjuden organisation kan inte läsa planen (den saknas i samtycket eller deltar inte).",
};

export const TIMELINE_KIND = {
  episode: "Vårdepisod",
  plan_event: "Plan",
  coordinator_period: "Samordnare",
  meeting: "Möte",
  follow_up: "Uppföljning",
};

export const CHANGE = {
  "plan.create": "Planen påbörjades",
  "plan.update": "Planens uppgifter ändrades",
  "plan.participant.add": "Deltagare lades till",
  "plan.consent.give": "Samtycke registrerades",
  "plan.consent.withdraw": "Samtycke återkallades",
  "plan.need.add": "Behov lades till",
  "plan.need.update": "Behov ändrades",
  "plan.goal.add": "Mål lades till",
  "plan.goal.update": "Mål ändrades",
  "plan.action.add": "Insats lades till",
  "plan.action.propose": "Insats föreslogs",
  "plan.action.update": "Insats ändrades",
  "plan.action.accept": "Insats accepterades",
  "plan.action.dispute": "Insats bestreds",
  "plan.activate": "Planen aktiverades",
  "plan.pause": "Planen pausades",
  "plan.close": "Planen avslutades",
  "plan.cancel": "Planen makulerades",
  "plan.meeting.invite": "Kallelse skickades",
  "plan.meeting.answer": "Svar på kallelse",
  "plan.meeting.update": "Möte ändrades",
  "plan.meeting.hold": "Möte dokumenterades",
  "plan.follow_up.add": "Uppföljning planerades",
  "plan.follow_up.record": "Uppföljning dokumenterades",
};

// Activation and other refusals: one plain Swedish sentence per unmet rule.
export function ruleText(error, actionsById = {}) {
  const message = error.message || "";
  const idMatch = message.match(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i);
  const action = idMatch ? actionsById[idMatch[0]] : undefined;
  const actionName = action ? `”${action.description}”` : "en av insatserna";
  switch (error.rule) {
    case "consent":
      return "Klientens samtycke saknas eller gäller inte längre. Registrera ett aktivt samtycke.";
    case "kommun_participant":
      return "Ingen kommun deltar som huvudman. Lägg till kommunen som deltagare.";
    case "region_participant":
      return "Ingen region deltar som huvudman. Bjud in regionen som deltagare.";
    case "overall_responsibility":
      return /must be held/.test(message)
        ? "Det övergripande ansvaret måste ligga hos en kommun eller region som deltar i planen."
        : "Ingen huvudman har fått det övergripande ansvaret för planen.";
    case "actions":
      return "Planen har inga insatser. Lägg till minst en insats.";
    case "action_responsible":
      return `Insatsen ${actionName} har en ansvarig organisation som inte deltar i planen.`;
    case "action_accepted": {
      const status = action ? ACTION_STATUS[action.status] || action.status : "inte accepterad";
      return `Insatsen ${actionName} är inte accepterad av den ansvariga organisationen (${status.toLowerCase()}).`;
    }
    case "follow_up_date":
      return /passed/.test(message)
        ? "Uppföljningsdatumet har redan passerat. Välj ett nytt datum."
        : "Planen saknar uppföljningsdatum.";
    case "transition":
      return "Planen kan inte byta till den statusen från sin nuvarande status.";
    case "plan_open":
      return "Planen är avslutad eller makulerad och kan inte längre ändras.";
    case "relatives_objection":
      return "Klienten motsätter sig att närstående deltar.";
    case "overlap":
      return "Episoden överlappar en annan episod i samma eller motsvarande fas.";
    case "lvm_six_months":
      return "LVM-vård får pågå högst sex månader. Fortsatt vård kräver ett nytt beslut.";
    case "lvm_new_decision":
      return "En ny period av LVM-vård kräver ett nytt beslut (ansökan eller omedelbart omhändertagande).";
    case "within_lvm_vard":
      return "Vård i annan form måste ligga inom en period av LVM-vård och dess sex månader.";
    case "already_assigned":
      return "Personen är redan klientens samordnare.";
    default:
      return "Ett villkor för ändringen är inte uppfyllt.";
  }
}

export const STATUS_MESSAGE = {
  0: "Tjänsten gick inte att nå. Kontrollera anslutningen och försök igen.",
  400: "Begäran kunde inte tolkas.",
  401: "Du är inte inloggad, eller så har inloggningen gått ut.",
  403: "Din roll eller organisation får inte göra detta.",
  404: "Uppgiften finns inte, eller så har du inte åtkomst till den.",
  409: "Ändringen krockar med hur det ser ut just nu.",
  412: "Någon annan har ändrat planen sedan du öppnade den. Ladda om planen och gör ändringen igen.",
  413: "Uppgifterna är för stora.",
  415: "Tjänsten tog inte emot formatet.",
  422: "Uppgifterna kunde inte sparas. Kontrollera de markerade fälten.",
  428: "Planens version saknas i begäran. Ladda om planen.",
  429: "För många förfrågningar. Vänta en stund och försök igen.",
  500: "Något gick fel i tjänsten. Försök igen senare.",
  503: "Tjänsten är tillfälligt otillgänglig. Försök igen om en stund.",
};

export function statusMessage(status) {
  return STATUS_MESSAGE[status] || (status >= 500 ? STATUS_MESSAGE[500] : STATUS_MESSAGE[400]);
}

export const INDICATOR = {
  coverage: "Täckning: klienter med SIP",
  both_huvudman: "SIP med insatser från både kommun och region",
  discharge_with_plan: "Utskrivningar från LVM-vård med eftervårdsplan",
  median_days_to_first_meeting: "Median antal dagar till första SIP-möte",
  followup_on_time: "Uppföljningar i tid",
  client_participation: "Klienten deltog i planeringen",
};

export const GROUP_BY = {
  kommun: "Kommun",
  gender: "Kön",
  age_band: "Åldersgrupp",
  phase: "Fas",
};
