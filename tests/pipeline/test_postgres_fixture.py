"""The PostgreSQL fixture gives a real, writable database."""

from sqlalchemy import create_engine, text


def test_pg_url_is_a_real_writable_database(pg_url: str) -> None:
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE probe (x int)"))
        conn.execute(text("INSERT INTO probe VALUES (41)"))
        assert conn.execute(text("SELECT x + 1 FROM probe")).scalar_one() == 42
        conn.execute(text("DROP TABLE probe"))
    engine.dispose()
