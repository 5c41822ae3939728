"""The retail database's tables, shaped like Odoo 17's (a subset of columns).

Names, keys and the columns erpops reads (ir_attachment.store_fname/checksum,
ir_module_module.state, ir_config_parameter database.uuid, account_move_line
debit/credit...) match Odoo, so what works on the lab works on a real Odoo
database. Lines cascade with their order/move, as in Odoo.
"""

SCHEMA_SQL = r"""
CREATE TABLE res_company (
    id serial PRIMARY KEY, name varchar NOT NULL, currency_id integer NOT NULL DEFAULT 1,
    partner_id integer, create_date timestamp DEFAULT now(), write_date timestamp DEFAULT now());
CREATE TABLE res_partner (
    id serial PRIMARY KEY, name varchar, company_id integer REFERENCES res_company(id),
    email varchar, phone varchar, street varchar, city varchar, zip varchar, country_code varchar(2),
    is_company boolean DEFAULT false, customer_rank integer DEFAULT 0, supplier_rank integer DEFAULT 0,
    active boolean DEFAULT true, create_date timestamp DEFAULT now(), write_date timestamp DEFAULT now());
CREATE TABLE res_users (
    id serial PRIMARY KEY, login varchar NOT NULL UNIQUE, partner_id integer NOT NULL REFERENCES res_partner(id),
    company_id integer NOT NULL REFERENCES res_company(id), active boolean DEFAULT true,
    password varchar, share boolean DEFAULT false,
    create_date timestamp DEFAULT now(), write_date timestamp DEFAULT now());
CREATE TABLE product_template (
    id serial PRIMARY KEY, name jsonb NOT NULL, default_code varchar, type varchar DEFAULT 'product',
    list_price numeric, standard_price numeric, categ_id integer DEFAULT 1, barcode varchar,
    sale_ok boolean DEFAULT true, purchase_ok boolean DEFAULT true, available_in_pos boolean DEFAULT true,
    company_id integer REFERENCES res_company(id), active boolean DEFAULT true,
    create_date timestamp DEFAULT now(), write_date timestamp DEFAULT now());
CREATE TABLE product_product (
    id serial PRIMARY KEY, product_tmpl_id integer NOT NULL REFERENCES product_template(id) ON DELETE CASCADE,
    default_code varchar, barcode varchar UNIQUE, active boolean DEFAULT true,
    create_date timestamp DEFAULT now(), write_date timestamp DEFAULT now());
CREATE TABLE stock_location (
    id serial PRIMARY KEY, name varchar NOT NULL, complete_name varchar, usage varchar NOT NULL,
    location_id integer REFERENCES stock_location(id), company_id integer REFERENCES res_company(id),
    active boolean DEFAULT true, create_date timestamp DEFAULT now(), write_date timestamp DEFAULT now());
CREATE TABLE stock_quant (
    id serial PRIMARY KEY, product_id integer NOT NULL REFERENCES product_product(id),
    location_id integer NOT NULL REFERENCES stock_location(id), company_id integer REFERENCES res_company(id),
    quantity numeric NOT NULL DEFAULT 0, reserved_quantity numeric NOT NULL DEFAULT 0, in_date timestamp,
    create_date timestamp DEFAULT now(), write_date timestamp DEFAULT now());
CREATE TABLE sale_order (
    id serial PRIMARY KEY, name varchar NOT NULL, partner_id integer NOT NULL REFERENCES res_partner(id),
    company_id integer NOT NULL REFERENCES res_company(id), user_id integer REFERENCES res_users(id),
    state varchar DEFAULT 'draft', date_order timestamp NOT NULL, amount_untaxed numeric,
    amount_tax numeric, amount_total numeric, note text,
    create_date timestamp DEFAULT now(), write_date timestamp DEFAULT now());
CREATE TABLE sale_order_line (
    id serial PRIMARY KEY, order_id integer NOT NULL REFERENCES sale_order(id) ON DELETE CASCADE,
    product_id integer REFERENCES product_product(id), name text NOT NULL, product_uom_qty numeric,
    price_unit numeric, price_subtotal numeric, price_total numeric, sequence integer DEFAULT 10,
    company_id integer REFERENCES res_company(id),
    create_date timestamp DEFAULT now(), write_date timestamp DEFAULT now());
CREATE TABLE pos_session (
    id serial PRIMARY KEY, name varchar NOT NULL, config_id integer NOT NULL, user_id integer REFERENCES res_users(id),
    state varchar DEFAULT 'opened', start_at timestamp, stop_at timestamp,
    create_date timestamp DEFAULT now(), write_date timestamp DEFAULT now());
CREATE TABLE pos_order (
    id serial PRIMARY KEY, name varchar NOT NULL, pos_reference varchar,
    session_id integer NOT NULL REFERENCES pos_session(id), partner_id integer REFERENCES res_partner(id),
    company_id integer NOT NULL REFERENCES res_company(id), user_id integer REFERENCES res_users(id),
    date_order timestamp NOT NULL DEFAULT now(), state varchar DEFAULT 'paid',
    amount_tax numeric NOT NULL DEFAULT 0, amount_total numeric NOT NULL DEFAULT 0,
    amount_paid numeric NOT NULL DEFAULT 0, amount_return numeric NOT NULL DEFAULT 0,
    account_move integer, create_date timestamp DEFAULT now(), write_date timestamp DEFAULT now());
CREATE TABLE pos_order_line (
    id serial PRIMARY KEY, order_id integer NOT NULL REFERENCES pos_order(id) ON DELETE CASCADE,
    product_id integer NOT NULL REFERENCES product_product(id), full_product_name varchar, qty numeric,
    price_unit numeric, discount numeric DEFAULT 0, price_subtotal numeric, price_subtotal_incl numeric,
    company_id integer REFERENCES res_company(id),
    create_date timestamp DEFAULT now(), write_date timestamp DEFAULT now());
CREATE TABLE stock_move (
    id serial PRIMARY KEY, name varchar NOT NULL, reference varchar, product_id integer NOT NULL REFERENCES product_product(id),
    product_uom_qty numeric NOT NULL, quantity numeric, location_id integer NOT NULL REFERENCES stock_location(id),
    location_dest_id integer NOT NULL REFERENCES stock_location(id), state varchar DEFAULT 'done',
    date timestamp NOT NULL DEFAULT now(), origin varchar, company_id integer REFERENCES res_company(id),
    create_date timestamp DEFAULT now(), write_date timestamp DEFAULT now());
CREATE TABLE account_move (
    id serial PRIMARY KEY, name varchar, ref varchar, move_type varchar NOT NULL DEFAULT 'entry',
    state varchar NOT NULL DEFAULT 'posted', date date NOT NULL, journal_id integer NOT NULL DEFAULT 1,
    partner_id integer REFERENCES res_partner(id), company_id integer NOT NULL REFERENCES res_company(id),
    amount_total numeric, invoice_origin varchar,
    create_date timestamp DEFAULT now(), write_date timestamp DEFAULT now());
CREATE TABLE account_move_line (
    id serial PRIMARY KEY, move_id integer NOT NULL REFERENCES account_move(id) ON DELETE CASCADE,
    account_id integer NOT NULL, name varchar, debit numeric NOT NULL DEFAULT 0, credit numeric NOT NULL DEFAULT 0,
    balance numeric GENERATED ALWAYS AS (debit - credit) STORED, partner_id integer REFERENCES res_partner(id),
    product_id integer REFERENCES product_product(id), date date, company_id integer REFERENCES res_company(id),
    create_date timestamp DEFAULT now(), write_date timestamp DEFAULT now());
CREATE TABLE ir_attachment (
    id serial PRIMARY KEY, name varchar NOT NULL, res_model varchar, res_field varchar, res_id integer,
    company_id integer REFERENCES res_company(id), type varchar NOT NULL DEFAULT 'binary', url varchar,
    public boolean DEFAULT false, access_token varchar, db_datas bytea, store_fname varchar,
    file_size integer, checksum varchar(40), mimetype varchar, index_content text,
    create_date timestamp DEFAULT now(), write_date timestamp DEFAULT now());
CREATE TABLE ir_module_module (
    id serial PRIMARY KEY, name varchar NOT NULL UNIQUE, state varchar(16), latest_version varchar,
    application boolean DEFAULT false, author varchar, license varchar(32),
    create_date timestamp DEFAULT now(), write_date timestamp DEFAULT now());
CREATE TABLE ir_config_parameter (
    id serial PRIMARY KEY, key varchar NOT NULL UNIQUE, value text NOT NULL,
    create_date timestamp DEFAULT now(), write_date timestamp DEFAULT now());
CREATE TABLE ir_cron (
    id serial PRIMARY KEY, cron_name varchar, active boolean DEFAULT true, interval_number integer DEFAULT 1,
    interval_type varchar DEFAULT 'days', nextcall timestamp NOT NULL, lastcall timestamp, priority integer DEFAULT 5,
    numbercall integer DEFAULT -1, user_id integer REFERENCES res_users(id),
    create_date timestamp DEFAULT now(), write_date timestamp DEFAULT now());

CREATE INDEX res_partner_company_id_index ON res_partner (company_id);
CREATE INDEX product_product_product_tmpl_id_index ON product_product (product_tmpl_id);
CREATE INDEX stock_quant_product_location_index ON stock_quant (product_id, location_id);
CREATE INDEX sale_order_partner_id_index ON sale_order (partner_id);
CREATE INDEX sale_order_date_order_index ON sale_order (date_order);
CREATE INDEX sale_order_line_order_id_index ON sale_order_line (order_id);
CREATE INDEX pos_order_session_id_index ON pos_order (session_id);
CREATE INDEX pos_order_date_order_index ON pos_order (date_order);
CREATE INDEX pos_order_line_order_id_index ON pos_order_line (order_id);
CREATE INDEX stock_move_product_id_index ON stock_move (product_id);
CREATE INDEX stock_move_reference_index ON stock_move (reference);
CREATE INDEX account_move_date_index ON account_move (date);
CREATE INDEX account_move_line_move_id_index ON account_move_line (move_id);
CREATE INDEX ir_attachment_res_idx ON ir_attachment (res_model, res_id);
CREATE INDEX ir_attachment_store_fname_index ON ir_attachment (store_fname);
CREATE INDEX ir_attachment_checksum_index ON ir_attachment (checksum);
"""
