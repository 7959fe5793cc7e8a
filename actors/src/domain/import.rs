//! The import's closed sets that other rooms count and show: what a file's rows
//! are ([`Kind`]) and why a row was rejected ([`RejectCode`]). The inbox decides
//! them; telemetry and the web layer only name them.

use serde::{Deserialize, Serialize};

/// What the rows of a file are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    Products,
    Orders,
    Inventory,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Products => "products",
            Kind::Orders => "orders",
            Kind::Inventory => "inventory",
        }
    }
}

/// The reason code of a rejected row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectCode {
    // A record that could not be read as one.
    RowTooLarge,
    FieldCount,
    NotAnObject,
    MalformedJson,
    // A value that is missing or invalid.
    MissingSku,
    MissingName,
    MissingPrice,
    MissingStock,
    MissingOrderRef,
    MissingCustomer,
    MissingQuantity,
    InvalidSku,
    InvalidName,
    InvalidCategory,
    InvalidDescription,
    InvalidWeight,
    InvalidTaxClass,
    InvalidBarcode,
    InvalidGroup,
    MissingGroup,
    InvalidOptions,
    InvalidStatus,
    InvalidStock,
    InvalidOrderRef,
    InvalidCustomer,
    InvalidQuantity,
    PriceNotANumber,
    PriceAmbiguous,
    PriceTooPrecise,
    PriceNotPositive,
    PriceTooLarge,
    PriceForeignCurrency,
    // A row that is valid but does not fit the ledger.
    UnknownSku,
    UnknownCustomer,
    InvalidOrder,
    OrderRejected,
    InsufficientStock,
    DuplicateOrder,
    PriceMismatch,
    VariantExists,
    VariantOptions,
    GroupFull,
}

impl RejectCode {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectCode::RowTooLarge => "row_too_large",
            RejectCode::FieldCount => "field_count",
            RejectCode::NotAnObject => "not_an_object",
            RejectCode::MalformedJson => "malformed_json",
            RejectCode::MissingSku => "missing_sku",
            RejectCode::MissingName => "missing_name",
            RejectCode::MissingPrice => "missing_price",
            RejectCode::MissingStock => "missing_stock",
            RejectCode::MissingOrderRef => "missing_order_ref",
            RejectCode::MissingCustomer => "missing_customer",
            RejectCode::MissingQuantity => "missing_quantity",
            RejectCode::InvalidSku => "invalid_sku",
            RejectCode::InvalidName => "invalid_name",
            RejectCode::InvalidCategory => "invalid_category",
            RejectCode::InvalidDescription => "invalid_description",
            RejectCode::InvalidWeight => "invalid_weight",
            RejectCode::InvalidTaxClass => "invalid_tax_class",
            RejectCode::InvalidBarcode => "invalid_barcode",
            RejectCode::InvalidGroup => "invalid_group",
            RejectCode::MissingGroup => "missing_group",
            RejectCode::InvalidStatus => "invalid_status",
            RejectCode::InvalidOptions => "invalid_options",
            RejectCode::InvalidStock => "invalid_stock",
            RejectCode::InvalidOrderRef => "invalid_order_ref",
            RejectCode::InvalidCustomer => "invalid_customer",
            RejectCode::InvalidQuantity => "invalid_quantity",
            RejectCode::PriceNotANumber => "price_not_a_number",
            RejectCode::PriceAmbiguous => "price_ambiguous",
            RejectCode::PriceTooPrecise => "price_too_precise",
            RejectCode::PriceNotPositive => "price_not_positive",
            RejectCode::PriceTooLarge => "price_too_large",
            RejectCode::PriceForeignCurrency => "price_foreign_currency",
            RejectCode::UnknownSku => "unknown_sku",
            RejectCode::UnknownCustomer => "unknown_customer",
            RejectCode::InvalidOrder => "invalid_order",
            RejectCode::OrderRejected => "order_rejected",
            RejectCode::InsufficientStock => "insufficient_stock",
            RejectCode::DuplicateOrder => "duplicate_order",
            RejectCode::PriceMismatch => "price_mismatch",
            RejectCode::VariantExists => "variant_exists",
            RejectCode::VariantOptions => "variant_options",
            RejectCode::GroupFull => "group_full",
        }
    }
}

impl std::fmt::Display for RejectCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
