"""Seed the retail database: Odoo-shaped rows generated server-side.

Rows come from INSERT ... SELECT over generate_series, so even --scale 1
(about 50 MB) seeds in seconds. Amounts are consistent: a sale order's totals
are the sum of its lines, and every account move balances (debit = credit).
`setseed` makes two labs of the same scale hold the same business data.
"""

from __future__ import annotations

import math
import secrets
import uuid
from datetime import datetime, timezone

from erpops.lab.schema import SCHEMA_SQL

# Row counts at --scale 1 (about 50 MB with indexes); they grow linearly.
BASE_COUNTS = {
    "res_partner": 14_000,
    "res_users": 60,
    "product_template": 3_500,
    "stock_quant": 10_000,
    "sale_order": 8_500,
    "pos_session": 420,
    "pos_order": 25_000,
}
MINIMUMS = {"res_partner": 30, "res_users": 5, "product_template": 20, "stock_quant": 20,
            "sale_order": 20, "pos_session": 3, "pos_order": 30}

MODULES = [
    "base", "web", "bus", "mail", "auth_signup", "base_setup", "base_import", "resource", "uom",
    "product", "analytic", "account", "account_payment", "payment", "portal", "digest", "utm",
    "sales_team", "sale", "sale_management", "sale_stock", "stock", "stock_account", "purchase",
    "purchase_stock", "point_of_sale", "pos_sale", "pos_restaurant", "barcodes", "contacts",
    "calendar", "hr", "l10n_fr", "l10n_fr_account", "web_editor", "website", "loyalty", "pos_loyalty",
    "delivery", "stock_delivery", "spreadsheet", "spreadsheet_dashboard", "iap", "sms", "snailmail",
]
CRONS = [
    ("Mail: Email Queue Manager", 1, "minutes"), ("Base: Auto-vacuum internal data", 1, "days"),
    ("Stock: Procurement scheduler", 1, "days"), ("POS: close stale sessions", 1, "hours"),
    ("Account: Post draft entries with auto_post", 1, "days"), ("Digest Emails", 1, "days"),
    ("Sales: send quotation reminders", 1, "days"), ("Payment: post-process transactions", 10, "minutes"),
    ("Notification: Delete Notifications older than 6 Month", 1, "weeks"), ("Partner Autocomplete", 1, "days"),
]
COMPANIES = ["Retail HQ", "Store Nord", "Store Sud"]


def counts(scale: float) -> dict[str, int]:
    return {k: max(MINIMUMS[k], math.ceil(v * scale)) for k, v in BASE_COUNTS.items()}


def _data_sql(c: dict[str, int]) -> list[str]:
    n = c
    return [
        "SELECT setseed(0.42)",
        "INSERT INTO res_company (name) SELECT unnest(%s::text[])" % _array(COMPANIES),
        f"""INSERT INTO res_partner (name, company_id, email, phone, street, city, zip, country_code,
                is_company, customer_rank, supplier_rank, create_date, write_date)
            SELECT CASE WHEN g % 17 = 0 THEN 'Company ' || g || ' SARL' ELSE 'Customer ' || g END,
                   1 + g % 3, 'customer' || g || '@example.com',
                   '+33 1 ' || lpad(((g::bigint * 7919) % 100000000)::text, 8, '0'), g || ' rue du Commerce',
                   (ARRAY['Lille','Paris','Lyon','Marseille','Nantes','Rennes'])[1 + g % 6],
                   lpad((1000 + g % 95000)::text, 5, '0'), 'FR', g % 17 = 0, 1, (g % 29 = 0)::int,
                   now() - (g % 900) * interval '1 day', now() - (g % 90) * interval '1 day'
              FROM generate_series(1, {n['res_partner']}) g""",
        "UPDATE res_company SET partner_id = id",
        f"""INSERT INTO res_users (login, partner_id, company_id, password, share)
            SELECT CASE WHEN g = 1 THEN 'admin' ELSE 'cashier' || g END, g, 1 + g % 3,
                   '$pbkdf2-sha512$600000$' || md5(g::text) || '$' || md5((g * 31)::text), false
              FROM generate_series(1, {n['res_users']}) g""",
        f"""INSERT INTO product_template (name, default_code, type, list_price, standard_price, barcode, company_id)
            SELECT jsonb_build_object('en_US', 'Product ' || g, 'fr_FR', 'Produit ' || g),
                   'P' || lpad(g::text, 6, '0'), CASE WHEN g % 10 = 0 THEN 'consu' ELSE 'product' END,
                   round((1 + random() * 199)::numeric, 2), round((0.5 + random() * 99)::numeric, 2),
                   (3760000000000 + g)::text, NULL
              FROM generate_series(1, {n['product_template']}) g""",
        """INSERT INTO product_product (product_tmpl_id, default_code, barcode)
            SELECT id, default_code, barcode FROM product_template ORDER BY id""",
        """INSERT INTO stock_location (id, name, complete_name, usage, location_id, company_id) VALUES
            (1, 'Physical Locations', 'Physical Locations', 'view', NULL, NULL),
            (2, 'Partners', 'Partners', 'view', NULL, NULL),
            (3, 'Virtual Locations', 'Virtual Locations', 'view', NULL, NULL),
            (4, 'Customers', 'Partners/Customers', 'customer', 2, NULL),
            (5, 'Vendors', 'Partners/Vendors', 'supplier', 2, NULL),
            (6, 'Inventory adjustment', 'Virtual Locations/Inventory adjustment', 'inventory', 3, NULL),
            (7, 'Stock', 'WH/Stock', 'internal', 1, 1),
            (8, 'Stock', 'NORD/Stock', 'internal', 1, 2),
            (9, 'Stock', 'SUD/Stock', 'internal', 1, 3),
            (10, 'Shelf 1', 'WH/Stock/Shelf 1', 'internal', 7, 1),
            (11, 'Shelf 1', 'NORD/Stock/Shelf 1', 'internal', 8, 2),
            (12, 'Shelf 1', 'SUD/Stock/Shelf 1', 'internal', 9, 3)""",
        "SELECT setval('stock_location_id_seq', 12)",
        f"""INSERT INTO stock_quant (product_id, location_id, company_id, quantity, in_date)
            SELECT 1 + g % {n['product_template']}, 7 + g % 6, 1 + g % 3, (g * 13) % 250,
                   now() - (g % 400) * interval '1 day'
              FROM generate_series(1, {n['stock_quant']}) g""",
        # Sale orders: lines first (in a temp table) so order totals are their sum.
        f"""CREATE TEMP TABLE tmp_sol AS
            SELECT o AS order_id, k AS sequence, 1 + (o * 7 + k * 13) % {n['product_template']} AS product_id,
                   (1 + (o + k) % 5)::numeric AS qty
              FROM generate_series(1, {n['sale_order']}) o, generate_series(1, 4) k WHERE k <= 1 + o % 4""",
        """ALTER TABLE tmp_sol ADD COLUMN price numeric""",
        """UPDATE tmp_sol t SET price = pt.list_price FROM product_template pt WHERE pt.id = t.product_id""",
        f"""INSERT INTO sale_order (id, name, partner_id, company_id, user_id, state, date_order,
                amount_untaxed, amount_tax, amount_total)
            SELECT o, 'S' || lpad(o::text, 5, '0'), 1 + (o * 11) % {n['res_partner']}, 1 + o % 3,
                   1 + o % {n['res_users']}, (ARRAY['sale','sale','done','draft','cancel'])[1 + o % 5],
                   now() - (o % 700) * interval '1 day' - (o % 86400) * interval '1 second',
                   s.untaxed, round(s.untaxed * 0.2, 2), s.untaxed + round(s.untaxed * 0.2, 2)
              FROM (SELECT order_id AS o, sum(qty * price) AS untaxed FROM tmp_sol GROUP BY order_id) s""",
        "SELECT setval('sale_order_id_seq', (SELECT max(id) FROM sale_order))",
        """INSERT INTO sale_order_line (order_id, product_id, name, product_uom_qty, price_unit,
                price_subtotal, price_total, sequence, company_id)
            SELECT t.order_id, t.product_id, '[P' || lpad(t.product_id::text, 6, '0') || '] Product ' || t.product_id,
                   t.qty, t.price, t.qty * t.price, round(t.qty * t.price * 1.2, 2), t.sequence * 10, 1 + t.order_id % 3
              FROM tmp_sol t""",
        f"""INSERT INTO pos_session (name, config_id, user_id, state, start_at, stop_at)
            SELECT 'POS/' || lpad(g::text, 5, '0'), 1 + g % 3, 1 + g % {n['res_users']},
                   CASE WHEN g = {n['pos_session']} THEN 'opened' ELSE 'closed' END,
                   now() - ({n['pos_session']} - g + 1) * interval '12 hours',
                   CASE WHEN g = {n['pos_session']} THEN NULL
                        ELSE now() - ({n['pos_session']} - g) * interval '12 hours' END
              FROM generate_series(1, {n['pos_session']}) g""",
        f"""CREATE TEMP TABLE tmp_pol AS
            SELECT o AS order_id, k, 1 + (o * 17 + k * 7) % {n['product_template']} AS product_id,
                   (1 + (o * k) % 3)::numeric AS qty
              FROM generate_series(1, {n['pos_order']}) o, generate_series(1, 3) k WHERE k <= 1 + o % 3""",
        "ALTER TABLE tmp_pol ADD COLUMN price numeric",
        "UPDATE tmp_pol t SET price = pt.list_price FROM product_template pt WHERE pt.id = t.product_id",
        # One balanced entry per closed POS session, written before the orders so each
        # order can point at its session's move (no UPDATE: it would double the table).
        f"""INSERT INTO account_move (name, ref, move_type, state, date, company_id, amount_total, invoice_origin)
            SELECT 'POSS/' || lpad(s.id::text, 5, '0'), s.name, 'entry', 'posted', s.stop_at::date,
                   1 + s.id % 3, t.total, s.name
              FROM pos_session s
              JOIN (SELECT 1 + order_id % {n['pos_session']} AS session_id, sum(qty * price) AS total
                      FROM tmp_pol GROUP BY 1) t ON t.session_id = s.id
             WHERE s.state = 'closed' ORDER BY s.id""",
        f"""INSERT INTO pos_order (id, name, pos_reference, session_id, partner_id, company_id, user_id,
                date_order, state, amount_tax, amount_total, amount_paid, account_move)
            SELECT o, 'Shop/' || lpad(o::text, 6, '0'), 'Order ' || lpad(o::text, 5, '0') || '-001-0001',
                   1 + o % {n['pos_session']}, CASE WHEN o % 4 = 0 THEN 1 + o % {n['res_partner']} END,
                   1 + o % 3, 1 + o % {n['res_users']}, now() - (o % 300) * interval '1 day',
                   'done', round(s.total - s.total / 1.2, 2), s.total, s.total, m.id
              FROM (SELECT order_id AS o, sum(qty * price) AS total FROM tmp_pol GROUP BY order_id) s
              JOIN pos_session ps ON ps.id = 1 + s.o % {n['pos_session']}
              LEFT JOIN account_move m ON m.ref = ps.name AND m.move_type = 'entry'""",
        "SELECT setval('pos_order_id_seq', (SELECT max(id) FROM pos_order))",
        """INSERT INTO pos_order_line (order_id, product_id, full_product_name, qty, price_unit,
                price_subtotal, price_subtotal_incl, company_id)
            SELECT t.order_id, t.product_id, 'Product ' || t.product_id, t.qty, t.price,
                   round(t.qty * t.price / 1.2, 2), t.qty * t.price, 1 + t.order_id % 3
              FROM tmp_pol t""",
        # Every delivered line left stock: one done move per POS line and per confirmed sale line.
        """INSERT INTO stock_move (name, reference, product_id, product_uom_qty, quantity, location_id,
                location_dest_id, state, date, origin, company_id)
            SELECT 'Product ' || l.product_id, 'Shop/' || lpad(l.order_id::text, 6, '0'), l.product_id, l.qty, l.qty,
                   7 + l.order_id % 3, 4, 'done', now() - (l.order_id % 300) * interval '1 day',
                   'POS/' || l.order_id, 1 + l.order_id % 3
              FROM pos_order_line l""",
        """INSERT INTO stock_move (name, reference, product_id, product_uom_qty, quantity, location_id,
                location_dest_id, state, date, origin, company_id)
            SELECT l.name, 'WH/OUT/' || lpad(l.order_id::text, 5, '0'), l.product_id, l.product_uom_qty,
                   l.product_uom_qty, 7, 4, 'done', o.date_order, o.name, l.company_id
              FROM sale_order_line l JOIN sale_order o ON o.id = l.order_id WHERE o.state IN ('sale', 'done')""",
        # Invoices for confirmed sale orders; then three lines per move, debit = credit.
        """INSERT INTO account_move (name, ref, move_type, state, date, partner_id, company_id, amount_total, invoice_origin)
            SELECT 'INV/' || to_char(o.date_order, 'YYYY') || '/' || lpad(o.id::text, 5, '0'), o.name, 'out_invoice',
                   'posted', o.date_order::date, o.partner_id, o.company_id, o.amount_total, o.name
              FROM sale_order o WHERE o.state IN ('sale', 'done') ORDER BY o.id""",
        """INSERT INTO account_move_line (move_id, account_id, name, debit, credit, partner_id, date, company_id)
            SELECT m.id, a.account_id, a.label, a.debit, a.credit, m.partner_id, m.date, m.company_id
              FROM account_move m,
                   LATERAL (VALUES (121, 'Receivable', m.amount_total, 0::numeric),
                                   (701, 'Sales', 0::numeric, round(m.amount_total / 1.2, 2)),
                                   (4457, 'Output VAT 20%', 0::numeric, m.amount_total - round(m.amount_total / 1.2, 2)))
                           AS a(account_id, label, debit, credit)""",
        "INSERT INTO ir_module_module (name, state, latest_version, application, author, license) "
        "SELECT m, 'installed', '17.0.1.' || (length(m) % 4), m IN ('sale','stock','point_of_sale','account','website','contacts'), "
        "'Odoo S.A.', 'LGPL-3' FROM unnest(" + _array(MODULES) + "::text[]) m",
        "INSERT INTO ir_module_module (name, state, latest_version) VALUES "
        "('mrp', 'uninstalled', NULL), ('hr_payroll', 'uninstalled', NULL), ('project', 'to install', NULL)",
        "INSERT INTO ir_cron (cron_name, interval_number, interval_type, nextcall, user_id) "
        "SELECT c[1], c[2]::int, c[3], now() + interval '1 hour', 1 FROM (VALUES %s) AS v(c)"
        % ", ".join(f"(ARRAY['{a}', '{b}', '{u}'])" for a, b, u in CRONS),
    ]


def _array(values: list[str]) -> str:
    return "ARRAY[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def create_database(admin_conn, dbname: str) -> None:
    admin_conn.execute(f'CREATE DATABASE "{dbname}" TEMPLATE template0 ENCODING UTF8')


def seed(conn, scale: float) -> dict[str, int]:
    """Create the schema and rows in ``conn``'s database (one transaction); returns row counts."""
    c = counts(scale)
    with conn.transaction():
        conn.execute(SCHEMA_SQL)
        for statement in _data_sql(c):
            conn.execute(statement)
        now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        conn.execute(
            "INSERT INTO ir_config_parameter (key, value) VALUES "
            "('database.uuid', %s), ('database.secret', %s), ('database.create_date', %s), "
            "('web.base.url', 'http://localhost:8069'), ('base.login_cooldown_duration', '60')",
            (str(uuid.uuid4()), secrets.token_urlsafe(32), now),
        )
    return table_counts(conn)


def table_counts(conn) -> dict[str, int]:
    tables = ["res_partner", "product_product", "sale_order", "sale_order_line", "pos_order", "pos_order_line",
              "stock_move", "account_move", "account_move_line", "ir_attachment"]
    return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
