"""Invariants Django cannot declare portably, enforced by the database itself.

- A pair's videos belong to the pair's prompt and to its generators A and B: composite foreign
  keys on PostgreSQL, triggers on SQLite (which cannot add foreign keys to a table).
- A judgment's answers name questions of its project, each with a value from that question's
  ``allowed`` list: a trigger on both vendors.
"""

from django.db import migrations

PG_FORWARD = [
    """
    ALTER TABLE annotation_pair
      ADD CONSTRAINT pair_video_a_matches FOREIGN KEY (video_a_id, prompt_id, generator_a_id)
      REFERENCES annotation_video (id, prompt_id, generator_id)
    """,
    """
    ALTER TABLE annotation_pair
      ADD CONSTRAINT pair_video_b_matches FOREIGN KEY (video_b_id, prompt_id, generator_b_id)
      REFERENCES annotation_video (id, prompt_id, generator_id)
    """,
    """
    CREATE OR REPLACE FUNCTION annotation_judgment_answers_check() RETURNS trigger AS $$
    DECLARE
      k text;
      v jsonb;
      allowed_values jsonb;
    BEGIN
      IF jsonb_typeof(NEW.answers) <> 'object' THEN
        RAISE EXCEPTION 'judgment answers must be a JSON object' USING ERRCODE = '23514';
      END IF;
      FOR k, v IN SELECT * FROM jsonb_each(NEW.answers) LOOP
        SELECT q.allowed INTO allowed_values FROM annotation_question q
          WHERE q.project_id = NEW.project_id AND q.key = k;
        IF allowed_values IS NULL THEN
          RAISE EXCEPTION 'judgment answer for unknown question "%"', k USING ERRCODE = '23514';
        END IF;
        IF NOT (allowed_values @> jsonb_build_array(v)) THEN
          RAISE EXCEPTION 'judgment answer % is not allowed for question "%"', v, k USING ERRCODE = '23514';
        END IF;
      END LOOP;
      RETURN NEW;
    END
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER judgment_answers_check BEFORE INSERT OR UPDATE OF answers, project_id
      ON annotation_judgment FOR EACH ROW EXECUTE FUNCTION annotation_judgment_answers_check()
    """,
]
PG_BACKWARD = [
    "DROP TRIGGER IF EXISTS judgment_answers_check ON annotation_judgment",
    "DROP FUNCTION IF EXISTS annotation_judgment_answers_check()",
    "ALTER TABLE annotation_pair DROP CONSTRAINT IF EXISTS pair_video_b_matches",
    "ALTER TABLE annotation_pair DROP CONSTRAINT IF EXISTS pair_video_a_matches",
]

_SQLITE_PAIR_WHEN = """
    NOT EXISTS (SELECT 1 FROM annotation_video v WHERE v.id = NEW.video_a_id
                AND v.prompt_id = NEW.prompt_id AND v.generator_id = NEW.generator_a_id)
    OR NOT EXISTS (SELECT 1 FROM annotation_video v WHERE v.id = NEW.video_b_id
                AND v.prompt_id = NEW.prompt_id AND v.generator_id = NEW.generator_b_id)
"""
_SQLITE_ANSWERS_WHEN = """
    json_type(NEW.answers) IS NOT 'object' OR EXISTS (
      SELECT 1 FROM json_each(NEW.answers) AS a
      WHERE NOT EXISTS (
        SELECT 1 FROM annotation_question q, json_each(q.allowed) AS allowed_value
        WHERE q.project_id = NEW.project_id AND q.key = a.key
          AND allowed_value.type = 'text' AND a.type = 'text' AND allowed_value.value = a.value))
"""
SQLITE_FORWARD = [
    f"""CREATE TRIGGER pair_videos_match_insert BEFORE INSERT ON annotation_pair WHEN {_SQLITE_PAIR_WHEN}
        BEGIN SELECT RAISE(ABORT, 'pair videos must belong to the pair''s prompt and generators'); END""",
    f"""CREATE TRIGGER pair_videos_match_update BEFORE UPDATE ON annotation_pair WHEN {_SQLITE_PAIR_WHEN}
        BEGIN SELECT RAISE(ABORT, 'pair videos must belong to the pair''s prompt and generators'); END""",
    f"""CREATE TRIGGER judgment_answers_check_insert BEFORE INSERT ON annotation_judgment
        WHEN {_SQLITE_ANSWERS_WHEN}
        BEGIN SELECT RAISE(ABORT, 'judgment answers must name questions of the project with allowed values'); END""",
    f"""CREATE TRIGGER judgment_answers_check_update BEFORE UPDATE ON annotation_judgment
        WHEN {_SQLITE_ANSWERS_WHEN}
        BEGIN SELECT RAISE(ABORT, 'judgment answers must name questions of the project with allowed values'); END""",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS judgment_answers_check_update",
    "DROP TRIGGER IF EXISTS judgment_answers_check_insert",
    "DROP TRIGGER IF EXISTS pair_videos_match_update",
    "DROP TRIGGER IF EXISTS pair_videos_match_insert",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        statements = statements_by_vendor.get(schema_editor.connection.vendor)
        if statements is None:
            raise RuntimeError(f"no invariant SQL for database vendor {schema_editor.connection.vendor!r}")
        for sql in statements:
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("annotation", "0001_initial")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": PG_FORWARD, "sqlite": SQLITE_FORWARD}),
            _run({"postgresql": PG_BACKWARD, "sqlite": SQLITE_BACKWARD}),
        ),
    ]
