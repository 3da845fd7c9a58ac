# ruff: noqa: SIM905, RUF001
"""A Decidim-like database with multilingual JSON text, for backup tests and the bench.

Text is drawn from per-language word lists with a seeded generator, so it compresses
like real prose (not like repeated filler) and the same seed gives the same rows.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator

import psycopg

WORDS = {
    "fr": "le la les un une des de du et à vélo piste cyclable quartier mairie budget participatif "
    "école jardin partagé éclairage public sécurité propreté trottoir arbre parc bibliothèque "
    "associations jeunesse habitants concertation projet proposition réunion conseil rue place "
    "marché solidarité énergie rénovation transport bus tramway stationnement bruit piétons "
    "accessibilité handicap crèche sport piscine culture fête musique écologie déchets tri "
    "compost eau fontaine banc ombre chaleur été hiver nous demandons souhaitons proposons "
    "améliorer créer installer rénover sécuriser végétaliser développer ouvrir fermer "
    "pourquoi comment quand où très plus moins aussi avec sans pour contre entre".split(),
    "en": "the a of and to in bike lane neighbourhood council budget participatory school "
    "garden community lighting safety cleanliness sidewalk tree park library associations "
    "youth residents consultation project proposal meeting street square market solidarity "
    "energy renovation transport bus tram parking noise pedestrians accessibility nursery "
    "sport pool culture festival music ecology waste recycling compost water fountain bench "
    "shade heat summer winter we ask propose improve create install renovate secure green "
    "develop open close why how when where very more less also with without for against".split(),
    "ca": "el la els les un una de i a bicicleta carril barri ajuntament pressupost "
    "participatiu escola hort compartit enllumenat seguretat neteja vorera arbre parc "
    "biblioteca associacions joventut veïns projecte proposta reunió carrer plaça mercat "
    "energia transport autobús aparcament soroll vianants cultura festa música residus "
    "aigua font banc ombra calor estiu hivern demanem proposem millorar crear instal·lar".split(),
    "de": "der die das ein eine und zu im Fahrrad Radweg Viertel Rathaus Bürgerhaushalt "
    "Schule Gemeinschaftsgarten Beleuchtung Sicherheit Sauberkeit Gehweg Baum Park "
    "Bibliothek Vereine Jugend Anwohner Beteiligung Projekt Vorschlag Sitzung Straße Platz "
    "Markt Energie Sanierung Verkehr Parken Lärm Fußgänger Kultur Fest Musik Abfall Wasser "
    "Brunnen Bank Schatten Hitze Sommer Winter wir fordern schlagen vor verbessern bauen".split(),
    "ar": "في من إلى على مع دراجة حي بلدية ميزانية تشاركية مدرسة حديقة إنارة أمن نظافة رصيف شجرة "
    "مكتبة جمعيات شباب سكان مشروع اقتراح اجتماع شارع ساحة سوق طاقة نقل حافلة موقف ضجيج ثقافة "
    "موسيقى نفايات ماء نافورة ظل حرارة صيف شتاء نطلب نقترح تحسين إنشاء تركيب".split(),
    "el": "ο η το και σε ποδήλατο ποδηλατόδρομος γειτονιά δήμος προϋπολογισμός σχολείο κήπος "
    "φωτισμός ασφάλεια καθαριότητα πεζοδρόμιο δέντρο πάρκο βιβλιοθήκη νεολαία κάτοικοι "
    "έργο πρόταση συνάντηση δρόμος πλατεία αγορά ενέργεια μεταφορά λεωφορείο στάθμευση".split(),
}
LOCALES = tuple(WORDS)

SCHEMA = """
CREATE TABLE decidim_users (
    id bigserial PRIMARY KEY, nickname text NOT NULL, name text NOT NULL,
    locale text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE decidim_proposals (
    id bigserial PRIMARY KEY, author_id bigint REFERENCES decidim_users(id),
    title jsonb NOT NULL, body jsonb NOT NULL, state text, votes integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE decidim_comments (
    id bigserial PRIMARY KEY, proposal_id bigint REFERENCES decidim_proposals(id),
    author_id bigint REFERENCES decidim_users(id), body jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX ON decidim_comments (proposal_id);
"""
TABLES = ("decidim_users", "decidim_proposals", "decidim_comments")


def sentence(rng: random.Random, locale: str, n: int) -> str:
    """``n`` words of ``locale``, capitalised, with a full stop."""
    words = rng.choices(WORDS[locale], k=n)
    return " ".join(words).capitalize() + "."


def i18n(rng: random.Random, words: int, paragraphs: int = 1) -> str:
    """A Decidim translatable field: ``{"fr": "<p>..</p>", "en": ...}`` as JSON text."""
    out = {}
    for loc in rng.sample(LOCALES, k=rng.randint(2, 4)):
        paras = [
            "<p>" + " ".join(sentence(rng, loc, rng.randint(5, words)) for _ in range(3)) + "</p>"
            for _ in range(paragraphs)
        ]
        out[loc] = "".join(paras)
    return json.dumps(out, ensure_ascii=False)


def _rows(
    rng: random.Random, table: str, count: int, users: int, proposals: int
) -> Iterator[tuple[object, ...]]:
    for i in range(count):
        if table == "decidim_users":
            loc = rng.choice(LOCALES)
            yield (f"user{i}", sentence(rng, loc, 2), loc)
        elif table == "decidim_proposals":
            yield (rng.randint(1, users), i18n(rng, 8), i18n(rng, 20, paragraphs=3),
                   rng.choice(["accepted", "rejected", "evaluating", None]), rng.randint(0, 500))  # fmt: skip
        else:
            yield (rng.randint(1, proposals), rng.randint(1, users), i18n(rng, 25))


COLUMNS = {
    "decidim_users": ("nickname", "name", "locale"),
    "decidim_proposals": ("author_id", "title", "body", "state", "votes"),
    "decidim_comments": ("proposal_id", "author_id", "body"),
}


def populate(dsn: str, *, proposals: int = 200, seed: int = 1) -> dict[str, int]:
    """Create the schema and fill it; return the row counts.

    Roughly 3 comments per proposal and one user per 4 proposals; each proposal with its
    comments and indexes takes about 6.8 KB, so ``proposals=60_000`` is about 400 MB.
    """
    rng = random.Random(seed)
    users = max(1, proposals // 4)
    counts = {"decidim_users": users, "decidim_proposals": proposals,
              "decidim_comments": proposals * 3}  # fmt: skip
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SCHEMA)
        for table in TABLES:
            cols = ", ".join(COLUMNS[table])
            with conn.cursor().copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                for row in _rows(rng, table, counts[table], users, proposals):
                    copy.write_row(row)
        conn.execute("ANALYZE")
    return counts


def fingerprint(dsn: str) -> dict[str, tuple[int, str]]:
    """Per table: row count and SHA-256 of every row's text, in primary key order."""
    out = {}
    with psycopg.connect(dsn) as conn:
        for table in TABLES:
            h = hashlib.sha256()
            n = 0
            with conn.cursor() as cur:
                cur.execute(f"SELECT t::text FROM {table} t ORDER BY id")
                for (row,) in cur:
                    h.update(row.encode())
                    n += 1
            out[table] = (n, h.hexdigest())
    return out


def row_counts(dsn: str) -> dict[str, int]:
    """Row counts of the main tables (what the manifest records)."""
    with psycopg.connect(dsn) as conn:
        return {t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in TABLES}  # type: ignore[index]
