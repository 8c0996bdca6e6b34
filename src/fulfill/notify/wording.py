"""The words a notice fills its template with, in the customer's language: times and windows in
their timezone and their locale's way (Babel), and what we say about a reason, what happens next
and what we do about it.

The phrases live here rather than in the templates because several kinds share them (the
reasons of a failed attempt and of an exception) and the tracking page shows them too.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_interval, format_skeleton

FALLBACK = "en"
PLAIN_SPACES = str.maketrans({"\u2009": " ", "\u202f": " ", "\u00a0": " "})

DAY_WORDS = {
    "en": {
        "today": "today",
        "tomorrow": "tomorrow",
        "on": "on {date}",
        "between": "{day}, {times}",
    },
    "fr": {
        "today": "aujourd'hui",
        "tomorrow": "demain",
        "on": "le {date}",
        "between": "{day}, {times}",
    },
}

# What a reason code (fulfill_carriers.adapter.ExceptionReason) means to a customer.
REASONS = {
    "en": {
        "address": "the address could not be found",
        "not_home": "nobody was home",
        "refused": "the parcel was refused",
        "damaged": "the parcel was damaged",
        "lost": "the parcel is lost",
        "customs": "the parcel is held at customs",
        "weather": "bad weather held it up",
        "delayed": "it was held up on its way",
        "held": "the carrier is holding it",
        "other": "something went wrong on its way",
    },
    "fr": {
        "address": "l'adresse est introuvable",
        "not_home": "personne n'était là",
        "refused": "le colis a été refusé",
        "damaged": "le colis a été endommagé",
        "lost": "le colis est perdu",
        "customs": "le colis est retenu en douane",
        "weather": "le mauvais temps l'a retenu",
        "delayed": "il a été retardé en route",
        "held": "le transporteur le retient",
        "other": "un problème est survenu en route",
    },
}

NEXT_STEP = {
    "en": {
        "own_fleet": "We will bring it again on our next round and tell you when.",
        "carrier": "The carrier will try again on the next working day, or leave it at a "
        "pickup point near you.",
        "address": "Please check your address on your tracking page: we hold the parcel "
        "until we hear from you.",
    },
    "fr": {
        "own_fleet": "Nous le rapporterons lors de notre prochaine tournée et vous dirons quand.",
        "carrier": "Le transporteur réessaiera le prochain jour ouvré, ou le déposera dans un "
        "point relais près de chez vous.",
        "address": "Vérifiez votre adresse sur votre page de suivi : nous gardons le colis "
        "en attendant votre réponse.",
    },
}

REMEDY = {
    "en": {
        "late": "If the new time does not suit you, choose a new slot, a pickup point or a "
        "refund on your tracking page.",
        "moved": "We booked it on our next round. If that does not suit you, choose another "
        "slot, a pickup point or a refund on your tracking page.",
        "exception": "We have asked the carrier to look into it and will write again within "
        "a day. If you would rather, choose a refund or a replacement on your "
        "tracking page.",
        "lost": "We are sending a replacement at once, or a refund if you prefer: tell us on "
        "your tracking page.",
        "action": "Choose what suits you",
    },
    "fr": {
        "late": "Si la nouvelle heure ne vous convient pas, choisissez un autre créneau, un "
        "point relais ou un remboursement sur votre page de suivi.",
        "moved": "Nous l'avons placé sur notre prochaine tournée. Si cela ne vous convient "
        "pas, choisissez un autre créneau, un point relais ou un remboursement sur "
        "votre page de suivi.",
        "exception": "Nous avons demandé au transporteur d'enquêter et vous écrirons sous un "
        "jour. Si vous préférez, choisissez un remboursement ou un remplacement "
        "sur votre page de suivi.",
        "lost": "Nous envoyons un remplacement tout de suite, ou un remboursement si vous "
        "préférez : dites-le-nous sur votre page de suivi.",
        "action": "Choisir ce qui vous convient",
    },
}


def language_of(language: str) -> str:
    """The language we have words for: ``fr-CA`` is French, an unknown one English."""
    base = language.lower().split("-")[0]
    return base if base in DAY_WORDS else FALLBACK


def locale_of(language: str) -> Locale:
    try:
        return Locale.parse(language.replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        return Locale.parse(FALLBACK)


def window(start: datetime, end: datetime, timezone: str, now: datetime, language: str) -> str:
    """``today, 14:10-14:40`` in the customer's zone and locale (12 or 24 hours as they are
    used to); the day named only as far as it needs to be."""
    zone = ZoneInfo(timezone)
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    locale = locale_of(language)
    words = DAY_WORDS[language_of(language)]
    times = format_interval(local_start.time(), local_end.time(), _clock(locale), locale=locale)
    times = times.translate(PLAIN_SPACES)  # CLDR's thin spaces cost an SMS its GSM alphabet
    return words["between"].format(
        day=_day(local_start, now.astimezone(zone), locale, words), times=times
    )


def moment(at: datetime, timezone: str, language: str) -> str:
    """``Wed, Nov 18, 08:30``: when something happened, in the customer's zone and locale."""
    local = at.astimezone(ZoneInfo(timezone))
    locale = locale_of(language)
    date = format_skeleton("MMMEd", local, locale=locale)
    time = format_skeleton(_clock(locale), local, locale=locale)
    return f"{date}, {time}".translate(PLAIN_SPACES)


def _clock(locale: Locale) -> str:
    """The time skeleton of the locale: 24 hours, or 12 with its day period, as people use."""
    return "Hm" if "H" in locale.time_formats["short"].pattern else "hm"


def _day(at: datetime, now: datetime, locale: Locale, words: dict[str, str]) -> str:
    days = (at.date() - now.date()).days
    if days == 0:
        return words["today"]
    if days == 1:
        return words["tomorrow"]
    return words["on"].format(date=format_skeleton("MMMEd", at, locale=locale))


def eta_window(eta: datetime, source: str | None) -> tuple[datetime, datetime]:
    """A window the ETA is honest about: 30 minutes from our own plan, an hour from a carrier,
    two from the transit model; on five-minute marks."""
    half = {"plan": 15, "carrier": 30}.get(source or "", 60)
    start = _floor_5(eta - timedelta(minutes=half))
    return start, start + timedelta(minutes=2 * half)


def _floor_5(at: datetime) -> datetime:
    return at.replace(minute=at.minute - at.minute % 5, second=0, microsecond=0)


def reason(code: str | None, language: str) -> str:
    table = REASONS[language_of(language)]
    return table.get(code or "other", table["other"])


def next_step(code: str | None, own_fleet: bool, language: str) -> str:
    table = NEXT_STEP[language_of(language)]
    if code == "address":
        return table["address"]
    return table["own_fleet" if own_fleet else "carrier"]


def remedy(situation: str, language: str) -> str:
    return REMEDY[language_of(language)][situation]


def first_name(name: str) -> str:
    return name.split(maxsplit=1)[0] if name.split() else name


# What each tracking status says on the tracking page.
STATUS = {
    "en": {
        "confirmed": "Order confirmed",
        "pending": "Being prepared",
        "info_received": "Being prepared",
        "picked_up": "Handed to the carrier",
        "in_transit": "On its way",
        "out_for_delivery": "Out for delivery",
        "available_for_pickup": "Waiting at a pickup point",
        "attempt_failed": "Delivery attempt failed",
        "delivered": "Delivered",
        "exception": "Held up",
        "returning": "On its way back to us",
        "returned": "Returned to us",
        "cancelled": "Cancelled",
        "expired": "No news",
        "unknown": "No news",
        "late": "Running late",
    },
    "fr": {
        "confirmed": "Commande confirmée",
        "pending": "En préparation",
        "info_received": "En préparation",
        "picked_up": "Remis au transporteur",
        "in_transit": "En route",
        "out_for_delivery": "En cours de livraison",
        "available_for_pickup": "En attente au point relais",
        "attempt_failed": "Tentative de livraison échouée",
        "delivered": "Livré",
        "exception": "Retenu",
        "returning": "En retour vers nous",
        "returned": "Revenu chez nous",
        "cancelled": "Annulée",
        "expired": "Pas de nouvelles",
        "unknown": "Pas de nouvelles",
        "late": "En retard",
    },
}


def status(code: str, language: str) -> str:
    table = STATUS[language_of(language)]
    return table.get(code, table["unknown"])


# The tracking page's own words.
PAGE = {
    "en": {
        "title": "Your delivery",
        "hello": "Hello {name}",
        "order": "Order {ref}",
        "promised": "Promised",
        "expected": "Expected",
        "late_note": (
            "We are running late, sorry. We have written to you about what we are doing about it."
        ),
        "van_waiting": "The van has not left yet.",
        "van_on_way": "The van is on its way: {before} stops before yours.",
        "van_next": "You are the van's next stop.",
        "tracking_number": "Tracking number",
        "problem": "Report a problem",
        "problem_intro": "Something wrong? Tell us and we will look into it at once.",
        "message": "What happened (optional)",
        "send": "Send",
        "reported": "Thank you: we have your report and will come back to you shortly.",
        "case_open": "We are looking into the problem you reported.",
        "not_delivered": "It was not delivered",
        "damaged": "It arrived damaged",
        "wrong_item": "I received the wrong item",
        "history": "History",
    },
    "fr": {
        "title": "Votre livraison",
        "hello": "Bonjour {name}",
        "order": "Commande {ref}",
        "promised": "Promis",
        "expected": "Prévu",
        "late_note": (
            "Nous avons du retard, désolés. Nous vous avons écrit ce que nous faisons pour y "
            "remédier."
        ),
        "van_waiting": "La camionnette n'est pas encore partie.",
        "van_on_way": "La camionnette est en route : {before} arrêts avant le vôtre.",
        "van_next": "Vous êtes le prochain arrêt de la camionnette.",
        "tracking_number": "Numéro de suivi",
        "problem": "Signaler un problème",
        "problem_intro": "Un souci ? Dites-le-nous et nous nous en occupons tout de suite.",
        "message": "Ce qui s'est passé (facultatif)",
        "send": "Envoyer",
        "reported": "Merci : nous avons votre signalement et revenons vers vous très vite.",
        "case_open": "Nous examinons le problème que vous avez signalé.",
        "not_delivered": "Il n'a pas été livré",
        "damaged": "Il est arrivé endommagé",
        "wrong_item": "J'ai reçu le mauvais article",
        "history": "Historique",
    },
}
