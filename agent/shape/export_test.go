package shape

// OperatorCancel is operatorCancel, for the package's external tests.
const OperatorCancel = operatorCancel
