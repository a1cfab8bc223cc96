//! Typed classification of Diesel errors (feature `diesel`).

use std::error::Error;

use diesel::result::{ConnectionError, DatabaseErrorKind, Error as DieselError};

use super::typed::{TypedVerdict, verdict};
use super::{ErrorClass, Severity};

pub(crate) fn classify(error: &(dyn Error + 'static)) -> Option<TypedVerdict> {
    if let Some(e) = error.downcast_ref::<DieselError>() {
        return Some(classify_query(e));
    }
    if let Some(e) = error.downcast_ref::<ConnectionError>() {
        return Some(match e {
            ConnectionError::BadConnection(_) => TypedVerdict {
                // The connection was never established: nothing was sent.
                never_reached: true,
                ..verdict(
                    ErrorClass::ConnectionLost,
                    Severity::High,
                    "diesel: could not connect",
                )
            },
            ConnectionError::InvalidConnectionUrl(_) | ConnectionError::InvalidCString(_) => {
                verdict(
                    ErrorClass::Permanent,
                    Severity::Critical,
                    "diesel: invalid connection url",
                )
            }
            _ => verdict(
                ErrorClass::ConnectionLost,
                Severity::High,
                "diesel: connection error",
            ),
        });
    }
    None
}

fn classify_query(e: &DieselError) -> TypedVerdict {
    match e {
        DieselError::DatabaseError(kind, _) => match kind {
            DatabaseErrorKind::SerializationFailure => verdict(
                ErrorClass::Transient,
                Severity::Low,
                "diesel: serialization failure",
            ),
            DatabaseErrorKind::ClosedConnection => verdict(
                ErrorClass::ConnectionLost,
                Severity::High,
                "diesel: connection closed",
            ),
            DatabaseErrorKind::UniqueViolation
            | DatabaseErrorKind::ForeignKeyViolation
            | DatabaseErrorKind::NotNullViolation
            | DatabaseErrorKind::CheckViolation
            | DatabaseErrorKind::ReadOnlyTransaction => verdict(
                ErrorClass::Permanent,
                Severity::Medium,
                "diesel: constraint violation",
            ),
            _ => verdict(
                ErrorClass::Transient,
                Severity::Medium,
                "diesel: database error",
            ),
        },
        DieselError::NotFound => verdict(ErrorClass::Permanent, Severity::Low, "diesel: not found"),
        DieselError::RollbackTransaction => verdict(
            ErrorClass::Transient,
            Severity::Low,
            "diesel: transaction rolled back",
        ),
        DieselError::BrokenTransactionManager
        | DieselError::AlreadyInTransaction
        | DieselError::NotInTransaction => verdict(
            ErrorClass::Bug,
            Severity::High,
            "diesel: transaction misuse",
        ),
        DieselError::QueryBuilderError(_)
        | DieselError::DeserializationError(_)
        | DieselError::SerializationError(_)
        | DieselError::InvalidCString(_) => verdict(
            ErrorClass::Bug,
            Severity::High,
            "diesel: query or mapping defect",
        ),
        _ => verdict(
            ErrorClass::Transient,
            Severity::Medium,
            "diesel: other error",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diesel_kinds() {
        let e = DieselError::DatabaseError(
            DatabaseErrorKind::SerializationFailure,
            Box::new("could not serialize access".to_owned()),
        );
        assert_eq!(classify(&e).unwrap().class, ErrorClass::Transient);
        let e = DieselError::DatabaseError(
            DatabaseErrorKind::UniqueViolation,
            Box::new("duplicate key".to_owned()),
        );
        assert_eq!(classify(&e).unwrap().class, ErrorClass::Permanent);
        let e = DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection,
            Box::new("closed".to_owned()),
        );
        assert_eq!(classify(&e).unwrap().class, ErrorClass::ConnectionLost);
        let e = ConnectionError::BadConnection("connection refused".to_owned());
        let v = classify(&e).unwrap();
        assert!(v.never_reached);
    }
}
