"""Role and ownership rules of SPEC §2 as DRF permission classes.

Visibility ("may this caller know the object exists?") is the querysets' job, so a hidden object
is a 404 before these run; these decide what a caller who can see an object may do with it.
"""

from __future__ import annotations

from typing import Any

from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.views import APIView


def _user(request: Request) -> Any:
    return request.user if request.user and request.user.is_authenticated else None


class IsModerator(permissions.BasePermission):
    """Moderators and admins."""

    message = "Only moderators may do this."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = _user(request)
        return bool(user and user.is_moderator)


class IsAdminRole(permissions.BasePermission):
    """Admins only (the role, not Django's is_staff)."""

    message = "Only admins may do this."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = _user(request)
        return bool(user and user.is_admin)


class IsModeratorOrReadOnly(permissions.BasePermission):
    """Anyone reads; moderators and admins write (suites)."""

    message = "Only moderators may do this."

    def has_permission(self, request: Request, view: APIView) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        user = _user(request)
        return bool(user and user.is_moderator)


class IsAdminRoleOrReadOnly(permissions.BasePermission):
    """Anyone reads; only admins write (the model registry)."""

    message = "Only admins may change the model registry."

    def has_permission(self, request: Request, view: APIView) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        user = _user(request)
        return bool(user and user.is_admin)


class IsOwnerOrModeratorForWrites(permissions.BasePermission):
    """Reads for whoever can see the object; writes for its author and for moderators."""

    message = "Only the author or a moderator may change this test."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return request.method in permissions.SAFE_METHODS or _user(request) is not None

    def has_object_permission(self, request: Request, view: APIView, obj: Any) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        user = _user(request)
        return bool(user and (user.is_moderator or obj.created_by_id == user.pk))
